#pragma once
// Drain-side state a sink keeps per recording thread, found by the thread's
// session index in constant time.

#include <cstdint>
#include <memory>
#include <vector>

namespace pycroscope {
namespace sinks {

template <class State>
class PerThreadState {
public:
    State& operator[](std::uint32_t index) {
        if (index >= states_.size()) {
            states_.resize(index + 1);
        }
        if (!states_[index]) {
            states_[index] = std::make_unique<State>();
        }
        return *states_[index];
    }

    // Calls f(index, state) for every thread seen, in index order.
    template <class F>
    void for_each(F&& f) {
        for (std::uint32_t i = 0; i < states_.size(); ++i) {
            if (states_[i]) {
                f(i, *states_[i]);
            }
        }
    }

    void clear() { states_.clear(); }

private:
    std::vector<std::unique_ptr<State>> states_;
};

} // namespace sinks
} // namespace pycroscope
