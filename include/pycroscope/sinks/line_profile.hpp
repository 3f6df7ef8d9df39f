#pragma once
// Line timing moved to the model layer; the sinks keep their names for it.

#include "pycroscope/model/line_profile.hpp"

namespace pycroscope {
namespace sinks {

using model::LineKey;
using model::LineKeyHash;
using model::LineProfile;
using model::LineTable;
using model::LineTotals;

} // namespace sinks
} // namespace pycroscope
