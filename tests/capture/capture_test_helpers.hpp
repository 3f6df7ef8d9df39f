#pragma once
// Shared by the capture tests: a synthetic recording of every EventKind on
// several threads, delivered in interleaved batches the way the drain thread
// delivers them, and the same delivery order (recorded sinks, processors,
// other sinks) as SessionCore, so that a live run and a replay can be
// compared output for output.

#include <pycroscope/core/event.hpp>
#include <pycroscope/core/event_processor.hpp>
#include <pycroscope/core/session_info.hpp>
#include <pycroscope/core/sink.hpp>
#include <pycroscope/core/source_location.hpp>
#include <pycroscope/core/thread_info.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace capture_test {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

struct Delivery {
    pycroscope::ThreadInfo thread;
    std::vector<Event> events;
};

// A session's worth of deliveries with the locations they point to.
class Recording {
public:
    pycroscope::SessionInfo info;
    std::vector<Delivery> deliveries;
    std::vector<std::string> errors; // the summary's

    Recording() {
        info.process_name = "capture-test";
        info.pid = 4242;
        info.start_unix_ns = 1700000000123456789;
        info.start_ticks = 1000;
        info.calibration.source = pycroscope::clock::Source::tsc;
        info.calibration.ns_per_tick = 0.4;
        info.calibration.tick_origin = 1000;
        info.calibration.ns_origin = 55;
        info.buffer_capacity = 1 << 16;
        info.overflow = pycroscope::OverflowPolicy::drop_newest;
        info.collectors = {"tracer", "memory", "sampler"};
        info.metadata = {{"script", "x.py"}, {"argv", "a b"}};
    }

    const SourceLocation* location(std::string name, LocationKind kind, std::uint32_t line = 1,
                                   const char* file = "mod.py") {
        strings_.push_back(std::move(name));
        locations_.push_back(SourceLocation{strings_.back().c_str(), "qualified", file, line, kind});
        return &locations_.back();
    }
    // A location whose name is null (PYCRO_SCOPE()), to check null strings survive.
    const SourceLocation* unnamed_location() {
        locations_.push_back(SourceLocation{nullptr, "void f()", "f.cpp", 7, LocationKind::native_zone});
        return &locations_.back();
    }

    // Appends a batch of thread `index` (threads keep a running event count).
    void deliver(std::uint32_t index, const std::string& name, std::vector<Event> events, std::uint64_t lost = 0) {
        auto& count = counts_[index];
        count += events.size();
        Delivery d;
        d.thread.index = index;
        d.thread.os_tid = 7000 + index;
        d.thread.name = name;
        d.thread.events = count;
        d.thread.lost = lost;
        d.events = std::move(events);
        deliveries.push_back(std::move(d));
    }

    std::uint64_t total_events() const {
        std::uint64_t n = 0;
        for (const auto& d : deliveries) {
            n += d.events.size();
        }
        return n;
    }

    pycroscope::SessionSummary summary() const {
        pycroscope::SessionSummary s;
        s.info = info;
        std::uint64_t stop = info.start_ticks;
        std::map<std::uint32_t, pycroscope::ThreadInfo> threads;
        for (const auto& d : deliveries) {
            for (const auto& e : d.events) {
                stop = std::max(stop, e.timestamp);
            }
            threads[d.thread.index] = d.thread;
        }
        s.stop_ticks = stop + 10;
        s.duration_ns = info.session_ns(s.stop_ticks);
        for (auto& entry : threads) {
            entry.second.exited = entry.first % 2 == 0;
            s.threads.push_back(entry.second);
            s.total_events += entry.second.events;
            s.total_lost += entry.second.lost;
        }
        s.errors = errors;
        return s;
    }

    // Feeds the deliveries as SessionCore::deliver() does, then closes.
    void play_live(const std::vector<std::shared_ptr<pycroscope::EventProcessor>>& processors,
                   const std::vector<std::shared_ptr<pycroscope::Sink>>& sinks) const {
        for (const auto& p : processors) {
            p->open(info);
        }
        for (const auto& s : sinks) {
            s->open(info);
        }
        for (const auto& d : deliveries) {
            std::vector<Event> batch = d.events;
            for (const auto& s : sinks) {
                if (s->consumes_recorded_events()) {
                    s->consume(d.thread, batch.data(), batch.size());
                }
            }
            for (const auto& p : processors) {
                p->process(d.thread, batch.data(), batch.size());
            }
            for (const auto& s : sinks) {
                if (!s->consumes_recorded_events()) {
                    s->consume(d.thread, batch.data(), batch.size());
                }
            }
        }
        const pycroscope::SessionSummary s = summary();
        for (const auto& p : processors) {
            p->close(s);
        }
        for (const auto& sink : sinks) {
            sink->close(s);
        }
    }

private:
    std::deque<std::string> strings_;
    std::deque<SourceLocation> locations_;
    std::map<std::uint32_t, std::uint64_t> counts_;
};

inline Event ev(EventKind kind, std::uint64_t ts, const SourceLocation* location = nullptr, std::uint64_t payload = 0,
                std::uint32_t aux = 0, std::uint8_t flags = 0) {
    return Event{ts, pycroscope::location_id(location), payload, aux, kind, flags, 0};
}

// Whether an event's id word is a SourceLocation* (sample: its payload is).
inline bool id_is_location(const Event& e) {
    switch (e.kind) {
        case EventKind::zone_begin:
        case EventKind::zone_end:
        case EventKind::instant:
        case EventKind::counter:
        case EventKind::frame_mark:
        case EventKind::py_call:
        case EventKind::py_return:
        case EventKind::c_call:
        case EventKind::c_return:
        case EventKind::py_line:
        case EventKind::py_exception:
        case EventKind::py_resume:
        case EventKind::mem_alloc:
        case EventKind::io_call:
        case EventKind::exception_info:
        case EventKind::sample_frame: return true;
        case EventKind::mem_free: return e.id != 0;
        default: return false;
    }
}

inline std::string describe_location(std::uint64_t word) {
    const auto* l = reinterpret_cast<const SourceLocation*>(static_cast<std::uintptr_t>(word));
    if (l == nullptr) {
        return "null";
    }
    const auto text = [](const char* s) { return s == nullptr ? std::string("<null>") : "'" + std::string(s) + "'"; };
    return text(l->name) + "/" + text(l->function) + "/" + text(l->file) + ":" + std::to_string(l->line) + "#" +
           std::to_string(static_cast<unsigned>(l->kind));
}

// An event with its location words spelled out, for comparing events whose
// pointers differ (the reader owns its own SourceLocations).
inline std::string canonical(const Event& e) {
    std::string out = std::to_string(static_cast<unsigned>(e.kind)) + " t=" + std::to_string(e.timestamp);
    out += " id=" + (id_is_location(e) ? describe_location(e.id) : std::to_string(e.id));
    out += " p=" + (e.kind == EventKind::sample ? describe_location(e.payload) : std::to_string(e.payload));
    out += " aux=" + std::to_string(e.aux) + " f=" + std::to_string(e.flags) + " r=" + std::to_string(e.aux_high);
    return out;
}

inline std::string canonical(const pycroscope::ThreadInfo& t) {
    return std::to_string(t.index) + "/" + std::to_string(t.os_tid) + "/" + t.name + "/" + std::to_string(t.events) +
           "/" + std::to_string(t.lost) + "/" + (t.exited ? "exited" : "live");
}

// A pseudo-random recording that uses every EventKind: nested zones, Python
// calls, returns and generator resumes, C calls with payloads, lines,
// exceptions, memory with 48-bit sizes and scattered addresses, counters,
// samples with frames, I/O, GC spans, marks, frame marks, kinds without a
// code of their own, clocks stepping back and returns that match nothing.
inline Recording synthetic_recording(std::uint32_t threads, std::size_t events_per_thread, std::uint64_t seed) {
    Recording r;
    std::mt19937_64 rng(seed);
    const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    std::vector<const SourceLocation*> functions;
    for (int i = 0; i < 300; ++i) {
        functions.push_back(r.location("func_" + std::to_string(i), LocationKind::python_function,
                                       static_cast<std::uint32_t>(10 + i)));
    }
    std::vector<const SourceLocation*> builtins;
    for (int i = 0; i < 20; ++i) {
        builtins.push_back(r.location("builtin_" + std::to_string(i), LocationKind::c_function, 0, "<builtin>"));
    }
    std::vector<const SourceLocation*> zones{r.unnamed_location(), r.location("zone", LocationKind::native_zone),
                                             r.location("dyn", LocationKind::dynamic_zone)};
    const SourceLocation* counter = r.location("rss", LocationKind::counter);
    const SourceLocation* mark = r.location("mark", LocationKind::mark);
    const SourceLocation* frame = r.location("frame", LocationKind::frame);
    const SourceLocation* gc = r.location("gc", LocationKind::gc_collection, 2);
    const SourceLocation* io = r.location("open", LocationKind::io_site, 33);
    const SourceLocation* exc = r.location("builtins.ValueError", LocationKind::exception_type);
    const SourceLocation* tname = r.location("MainThread", LocationKind::other);
    std::vector<const SourceLocation*> sites;
    for (int i = 0; i < 40; ++i) {
        sites.push_back(r.location("site_" + std::to_string(i), LocationKind::python_line,
                                   static_cast<std::uint32_t>(i + 1)));
    }

    struct ThreadGen {
        std::uint64_t ts = 0;
        std::vector<const SourceLocation*> stack;
        std::vector<std::uint64_t> live;
        std::size_t left = 0;
        std::uint64_t lost = 0;
    };
    std::vector<ThreadGen> gens(threads);
    for (std::uint32_t t = 0; t < threads; ++t) {
        gens[t].ts = r.info.start_ticks + 5 + t;
        gens[t].left = events_per_thread;
    }
    std::uint64_t heap = 0x7f0000001000ull;
    bool any_left = true;
    while (any_left) {
        any_left = false;
        for (std::uint32_t t = 0; t < threads; ++t) {
            ThreadGen& g = gens[t];
            if (g.left == 0) {
                continue;
            }
            any_left = true;
            const std::size_t n = std::min<std::size_t>(g.left, 1 + pick(5000));
            std::vector<Event> batch;
            while (batch.size() < n) {
                g.ts += 1 + (pick(8) == 0 ? rng() % 100000 : rng() % 700);
                if (pick(500) == 0 && g.ts > 100) {
                    g.ts -= 1 + rng() % 50; // a clock that steps back
                }
                const std::size_t what = pick(100);
                if (what < 30 && g.stack.size() < 200) {
                    const SourceLocation* f = functions[pick(8) == 0 ? pick(functions.size()) : pick(12)];
                    const bool resume = pick(10) == 0;
                    batch.push_back(ev(resume ? EventKind::py_resume : EventKind::py_call, g.ts, f, 0, 0,
                                       pick(50) == 0 ? pycroscope::event_flags::synthetic : 0));
                    g.stack.push_back(f);
                } else if (what < 58 && !g.stack.empty()) {
                    const SourceLocation* f = g.stack.back();
                    g.stack.pop_back();
                    const bool mismatch = pick(100) == 0;
                    EventKind kind = EventKind::py_return;
                    if (f->kind == LocationKind::c_function) {
                        kind = EventKind::c_return;
                    } else if (f->kind != LocationKind::python_function) {
                        kind = EventKind::zone_end;
                    }
                    Event e = ev(kind, g.ts, mismatch ? functions[pick(functions.size())] : f, 0, 0,
                                 pick(20) == 0 ? pycroscope::event_flags::exception : 0);
                    if (kind == EventKind::c_return && pick(3) == 0) {
                        e.payload = 1 + rng() % 100000;
                    }
                    if (kind == EventKind::zone_end && f == gc) {
                        e.payload = rng() % 5000;
                        e.aux = static_cast<std::uint32_t>(rng() % 3);
                    }
                    batch.push_back(e);
                } else if (what < 63) {
                    const SourceLocation* b = builtins[pick(builtins.size())];
                    batch.push_back(ev(EventKind::c_call, g.ts, b, pick(2) == 0 ? 40 + pick(30) : 0));
                    g.stack.push_back(b);
                } else if (what < 66) {
                    const SourceLocation* z = pick(4) == 0 ? gc : zones[pick(zones.size())];
                    batch.push_back(ev(EventKind::zone_begin, g.ts, z));
                    g.stack.push_back(z);
                } else if (what < 74 && !g.stack.empty()) {
                    batch.push_back(ev(EventKind::py_line, g.ts, pick(30) == 0 ? functions[pick(40)] : g.stack.back(),
                                       1 + pick(400)));
                } else if (what < 84) {
                    Event e = ev(EventKind::mem_alloc, g.ts, pick(10) == 0 ? nullptr : sites[pick(sites.size())],
                                 heap + (rng() % (1u << 20)) * 16, 0,
                                 static_cast<std::uint8_t>(pick(3) | (pick(5) == 0 ? pycroscope::memory_flags::sampled : 0)));
                    const std::uint64_t bytes = pick(50) == 0 ? (std::uint64_t{1} << 40) + rng() % (std::uint64_t{1} << 47)
                                                              : 16 * (1 + pick(pick(4) == 0 ? 4096 : 8));
                    pycroscope::set_memory_bytes(e, bytes);
                    g.live.push_back(e.payload);
                    batch.push_back(e);
                } else if (what < 91 && !g.live.empty()) {
                    const std::size_t i = pick(g.live.size());
                    batch.push_back(ev(EventKind::mem_free, g.ts, nullptr, g.live[i], 0,
                                       static_cast<std::uint8_t>(pick(3))));
                    g.live[i] = g.live.back();
                    g.live.pop_back();
                } else if (what < 93) {
                    batch.push_back(ev(EventKind::counter, g.ts, counter,
                                       pycroscope::double_bits(static_cast<double>(rng() % 1000000) / 7.0)));
                } else if (what < 95 && batch.size() + 6 < n) {
                    const std::size_t frames = 1 + pick(5);
                    batch.push_back(Event{g.ts, 7000u + t, pycroscope::location_id(tname),
                                          static_cast<std::uint32_t>(frames), EventKind::sample,
                                          static_cast<std::uint8_t>(pick(4)), 0});
                    for (std::size_t i = 0; i < frames; ++i) {
                        batch.push_back(ev(EventKind::sample_frame, g.ts, functions[pick(30)], 1 + pick(300),
                                           static_cast<std::uint32_t>(i)));
                    }
                } else if (what < 96) {
                    batch.push_back(ev(EventKind::io_call, g.ts, io, pick(2) == 0 ? ~std::uint64_t{0} : pick(100000)));
                } else if (what < 97) {
                    batch.push_back(ev(EventKind::py_exception, g.ts, functions[pick(20)], 1 + pick(300), 0,
                                       pycroscope::event_flags::exception));
                    batch.push_back(ev(EventKind::exception_info, g.ts, exc, heap + rng() % 100000));
                } else if (what < 98) {
                    batch.push_back(ev(pick(2) == 0 ? EventKind::instant : EventKind::frame_mark, g.ts,
                                       pick(2) == 0 ? mark : frame));
                } else if (what < 99) {
                    // A kind this format has no code for, and an empty record.
                    batch.push_back(Event{g.ts, rng(), rng(), static_cast<std::uint32_t>(rng()),
                                          pick(2) == 0 ? static_cast<EventKind>(99) : EventKind::none,
                                          static_cast<std::uint8_t>(pick(256)), static_cast<std::uint16_t>(pick(65536))});
                } else {
                    batch.push_back(ev(EventKind::zone_end, g.ts, zones[pick(zones.size())]));
                }
            }
            g.left -= batch.size() > g.left ? g.left : batch.size();
            if (pick(7) == 0) {
                g.lost += pick(100);
            }
            r.deliver(t + 1, pick(20) == 0 ? "renamed-" + std::to_string(t) : "worker-" + std::to_string(t),
                      std::move(batch), g.lost);
        }
    }
    r.errors = {"some sink: disk full"};
    return r;
}

} // namespace capture_test
