// A frame-based host instrumented with native zones only: a small simulation
// with a worker pool, frame marks and counters. Writes the three built-in
// outputs into the directory given as argv[1] (default: current directory).
//
//   pycroscope_example_native_zones out/
//   -> out/session.json, out/stacks.folded, out/trace.json (open in ui.perfetto.dev)

#include <pycroscope.hpp>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace {

double integrate(int steps) {
    PYCRO_SCOPE();
    double sum = 0;
    for (int i = 0; i < steps; ++i) {
        sum += std::sin(i * 0.001) * std::cos(i * 0.002);
    }
    return sum;
}

double physics(int bodies) {
    PYCRO_SCOPE_N("physics");
    double energy = 0;
    for (int b = 0; b < bodies; ++b) {
        energy += integrate(2000);
    }
    return energy;
}

void render(int frame) {
    PYCRO_SCOPE_N("render");
    const std::string pass = frame % 2 == 0 ? "shadow pass" : "light pass";
    PYCRO_SCOPE_DYN(pass); // a zone named at run time
    integrate(5000);
}

void worker(int id, std::atomic<bool>& running, std::atomic<long>& jobs) {
    pycroscope::set_thread_name("worker-" + std::to_string(id));
    while (running.load()) {
        PYCRO_SCOPE_N("job");
        integrate(3000);
        jobs.fetch_add(1);
    }
}

} // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? std::string(argv[1]) + "/" : std::string();

    pycroscope::Config config;
    config.process_name = "native_zones example";
    config.metadata = {{"example", "native_zones"}};
    pycroscope::Session<pycroscope::NativeZones> session(config);
    session.add_sink<pycroscope::sinks::JsonSummarySink>(dir + "session.json");
    session.add_sink<pycroscope::sinks::FoldedStackSink>(dir + "stacks.folded");
    session.add_sink<pycroscope::sinks::ChromeTraceSink>(dir + "trace.json");
    try {
        session.start();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        return 2;
    }

    pycroscope::set_thread_name("main");
    std::atomic<bool> running{true};
    std::atomic<long> jobs{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < 3; ++i) {
        pool.emplace_back(worker, i, std::ref(running), std::ref(jobs));
    }
    double energy = 0;
    for (int frame = 0; frame < 60; ++frame) {
        PYCRO_SCOPE_N("frame");
        energy += physics(8);
        render(frame);
        PYCRO_COUNTER("jobs done", jobs.load());
        PYCRO_FRAME_MARK();
    }
    PYCRO_MARK("simulation finished");
    running = false;
    for (auto& t : pool) {
        t.join();
    }

    try {
        const auto summary = session.stop();
        std::printf("energy %.3f, %zu threads, %llu events, %llu lost, %.1f ms\n", energy, summary.threads.size(),
                    static_cast<unsigned long long>(summary.total_events),
                    static_cast<unsigned long long>(summary.total_lost), summary.duration_ns / 1e6);
        std::printf("wrote %ssession.json, %sstacks.folded, %strace.json\n", dir.c_str(), dir.c_str(), dir.c_str());
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        return 1;
    }
    return 0;
}
