#pragma once
// The compact binary capture: CaptureSink writes it live, CaptureReader reads
// it, replay() feeds it to processors and sinks offline.

#include "pycroscope/capture/capture_reader.hpp"
#include "pycroscope/capture/capture_sink.hpp"
#include "pycroscope/capture/replay.hpp"
