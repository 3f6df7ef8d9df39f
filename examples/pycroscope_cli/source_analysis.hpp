#pragma once
// The source pass for `pycroscope report`: the same script the live run
// used (python/analysis/source_findings.hpp), in an interpreter started for
// it, so a capture re-analysed offline gives the live run's findings.

#include "pycroscope/analysis/source_facts.hpp"

// Starts a bare interpreter on first use (no site-specific hooks of a
// script: nothing runs but the source pass).
pycroscope::analysis::SourceFactsProvider offline_source_facts();

// Finalizes that interpreter, if one was started.
void finish_offline_source_facts();
