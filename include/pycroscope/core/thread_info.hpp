#pragma once
// What sinks and summaries learn about a recording thread.

#include <cstdint>
#include <string>

namespace pycroscope {

struct ThreadInfo {
    std::uint32_t index = 0;  // session-local, 1-based, stable for the session
    std::uint64_t os_tid = 0; // kernel thread id
    std::string name;         // set_thread_name(), or "thread-<index>"
    std::uint64_t events = 0; // events delivered to the sinks
    std::uint64_t lost = 0;   // events dropped or overwritten before delivery
    bool exited = false;      // the thread ended during the session
};

} // namespace pycroscope
