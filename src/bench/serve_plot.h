// Hand-written SVG charts of a concurrency sweep: output token throughput, median TPOT and
// median TTFT against concurrency, one line per series (one series per sweep file).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::bench {

struct SweepPoint {
  double concurrency = 0;
  double output_throughput = 0;  // tok/s
  double median_tpot_ms = 0;
  double median_ttft_ms = 0;
};

struct SweepSeries {
  std::string label;
  std::vector<SweepPoint> points;  // sorted by concurrency
};

// Reads a sweep file ({"rows": [result, ...]}) or a single result JSON into a series. The
// concurrency of a row is max_concurrency, or the measured peak when it is null.
base::Result<SweepSeries> series_from_json(const nlohmann::json& doc, const std::string& label);

// An SVG document (three panels, shared legend): lines with markers, or bars when a series has a
// single point.
std::string render_sweep_svg(const std::vector<SweepSeries>& series, const std::string& title);

}  // namespace nibble::bench
