#pragma once
// The tests read files back with the library's strict parser as json::.

#include <pycroscope/core/json_reader.hpp>

namespace json = pycroscope::json;
