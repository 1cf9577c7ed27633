#include "bench/serve_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace nibble::bench {

namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};
constexpr double kPanelWidth = 380, kPanelHeight = 330, kMarginLeft = 70, kMarginTop = 70;
constexpr double kPlotWidth = 290, kPlotHeight = 230;  // inside one panel

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// Short tick/value label: no decimals for large values, up to two for small ones.
std::string value_label(double v) {
  const double a = std::fabs(v);
  if (a >= 100 || v == std::floor(v)) return num(v, 0);
  if (a >= 10) return num(v, 1);
  return num(v, 2);
}

// A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) giving about five ticks up to max.
double nice_step(double max_value) {
  if (!(max_value > 0)) return 1;
  const double raw = max_value / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

struct Panel {
  const char* title;
  const char* y_label;
  double SweepPoint::*field;
};

}  // namespace

base::Result<SweepSeries> series_from_json(const nlohmann::json& doc, const std::string& label) {
  SweepSeries series;
  series.label = label;
  std::vector<nlohmann::json> rows;
  if (doc.is_object() && doc.contains("rows") && doc["rows"].is_array()) {
    for (const auto& row : doc["rows"]) rows.push_back(row);
  } else if (doc.is_object()) {
    rows.push_back(doc);
  } else {
    return base::corrupt(label + ": expected a sweep file {\"rows\": [...]} or a result JSON object");
  }
  auto number = [](const nlohmann::json& row, const char* key, double fallback) {
    auto it = row.find(key);
    return it != row.end() && it->is_number() ? it->get<double>() : fallback;
  };
  for (const nlohmann::json& row : rows) {
    if (!row.is_object() || !row.contains("output_throughput")) {
      return base::corrupt(label + ": a row has no output_throughput");
    }
    SweepPoint p;
    p.concurrency = number(row, "max_concurrency", number(row, "max_concurrent_requests", 0));
    p.output_throughput = number(row, "output_throughput", 0);
    p.median_tpot_ms = number(row, "median_tpot_ms", 0);
    p.median_ttft_ms = number(row, "median_ttft_ms", 0);
    series.points.push_back(p);
  }
  std::sort(series.points.begin(), series.points.end(),
            [](const SweepPoint& a, const SweepPoint& b) { return a.concurrency < b.concurrency; });
  return series;
}

std::string render_sweep_svg(const std::vector<SweepSeries>& series, const std::string& title) {
  const Panel panels[] = {{"Output token throughput", "tok/s", &SweepPoint::output_throughput},
                          {"Median TPOT (excl. 1st token)", "ms", &SweepPoint::median_tpot_ms},
                          {"Median TTFT", "ms", &SweepPoint::median_ttft_ms}};
  const double legend_height = 24.0 * static_cast<double>((series.size() + 2) / 3);
  const double width = 3 * kPanelWidth + 20;
  const double height = kPanelHeight + 60 + legend_height;

  // x positions: log2 of concurrency when all are positive, spread evenly between min and max.
  std::set<double> xs;
  for (const SweepSeries& s : series) {
    for (const SweepPoint& p : s.points) xs.insert(p.concurrency);
  }
  bool log_x = !xs.empty() && *xs.begin() > 0;
  auto xval = [&](double c) { return log_x ? std::log2(c) : c; };
  const double x_min = xs.empty() ? 0 : xval(*xs.begin());
  const double x_max = xs.empty() ? 1 : xval(*xs.rbegin());
  auto x_pos = [&](double c) {
    if (x_max <= x_min) return kPlotWidth / 2;
    return 15 + (kPlotWidth - 30) * (xval(c) - x_min) / (x_max - x_min);
  };
  const bool label_points = series.size() <= 2;

  std::string svg;
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width, 0) + "\" height=\"" +
         num(height, 0) + "\" viewBox=\"0 0 " + num(width, 0) + " " + num(height, 0) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + num(width / 2) +
         "\" y=\"28\" font-size=\"18\" font-weight=\"bold\" text-anchor=\"middle\">" + xml_escape(title) +
         "</text>\n";

  for (size_t pi = 0; pi < 3; ++pi) {
    const Panel& panel = panels[pi];
    const double ox = 10 + static_cast<double>(pi) * kPanelWidth + kMarginLeft;  // plot origin (top-left)
    const double oy = kMarginTop;
    double y_max = 0;
    for (const SweepSeries& s : series) {
      for (const SweepPoint& p : s.points) y_max = std::max(y_max, p.*panel.field);
    }
    const double step = nice_step(y_max * 1.1);
    const double y_top = std::max(step, std::ceil(y_max * 1.1 / step) * step);
    auto y_pos = [&](double v) { return oy + kPlotHeight - kPlotHeight * v / y_top; };

    svg += "<g>\n<text x=\"" + num(ox + kPlotWidth / 2) + "\" y=\"" + num(oy - 18) +
           "\" font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\">" + panel.title + "</text>\n";
    // Grid and y ticks.
    for (double v = 0; v <= y_top + step * 1e-9; v += step) {
      const double y = y_pos(v);
      svg += "<line x1=\"" + num(ox) + "\" y1=\"" + num(y) + "\" x2=\"" + num(ox + kPlotWidth) + "\" y2=\"" +
             num(y) + "\" stroke=\"#e0e0e0\" stroke-width=\"1\"/>\n";
      svg += "<text x=\"" + num(ox - 6) + "\" y=\"" + num(y + 4) +
             "\" font-size=\"11\" text-anchor=\"end\">" + value_label(v) + "</text>\n";
    }
    // Axes.
    svg += "<line x1=\"" + num(ox) + "\" y1=\"" + num(oy) + "\" x2=\"" + num(ox) + "\" y2=\"" +
           num(oy + kPlotHeight) + "\" stroke=\"black\" stroke-width=\"1.2\"/>\n";
    svg += "<line x1=\"" + num(ox) + "\" y1=\"" + num(oy + kPlotHeight) + "\" x2=\"" + num(ox + kPlotWidth) +
           "\" y2=\"" + num(oy + kPlotHeight) + "\" stroke=\"black\" stroke-width=\"1.2\"/>\n";
    for (double c : xs) {
      const double x = ox + x_pos(c);
      svg += "<line x1=\"" + num(x) + "\" y1=\"" + num(oy + kPlotHeight) + "\" x2=\"" + num(x) + "\" y2=\"" +
             num(oy + kPlotHeight + 5) + "\" stroke=\"black\"/>\n";
      svg += "<text x=\"" + num(x) + "\" y=\"" + num(oy + kPlotHeight + 19) +
             "\" font-size=\"11\" text-anchor=\"middle\">" + value_label(c) + "</text>\n";
    }
    svg += "<text x=\"" + num(ox + kPlotWidth / 2) + "\" y=\"" + num(oy + kPlotHeight + 40) +
           "\" font-size=\"12\" text-anchor=\"middle\">max concurrency (requests)</text>\n";
    svg += "<text transform=\"translate(" + num(ox - 48) + "," + num(oy + kPlotHeight / 2) +
           ") rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">" + panel.y_label + "</text>\n";
    // Series.
    for (size_t si = 0; si < series.size(); ++si) {
      const char* color = kColors[si % (sizeof(kColors) / sizeof(kColors[0]))];
      const std::vector<SweepPoint>& pts = series[si].points;
      if (pts.size() > 1) {
        std::string path;
        for (const SweepPoint& p : pts) {
          path +=
              (path.empty() ? "" : " ") + num(ox + x_pos(p.concurrency)) + "," + num(y_pos(p.*panel.field));
        }
        svg += "<polyline points=\"" + path + "\" fill=\"none\" stroke=\"" + color +
               "\" stroke-width=\"2.2\"/>\n";
      }
      for (const SweepPoint& p : pts) {
        const double value = p.*panel.field;
        double x = ox + x_pos(p.concurrency);
        const double y = y_pos(value);
        if (pts.size() == 1) {
          // A single point per series reads better as a bar; bars of several series sit side by side.
          constexpr double kBarWidth = 26;
          x += (static_cast<double>(si) - static_cast<double>(series.size() - 1) / 2) * (kBarWidth + 4);
          svg += "<rect x=\"" + num(x - kBarWidth / 2) + "\" y=\"" + num(y) + "\" width=\"" + num(kBarWidth) +
                 "\" height=\"" + num(oy + kPlotHeight - y) + "\" fill=\"" + color +
                 "\" fill-opacity=\"0.85\"/>\n";
        } else {
          svg += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"4\" fill=\"" + color + "\"/>\n";
        }
        if (label_points) {
          // Above the point unless another series is higher at the same concurrency.
          bool above = true;
          for (size_t other = 0; other < series.size(); ++other) {
            if (other == si || pts.size() == 1) continue;
            for (const SweepPoint& q : series[other].points) {
              if (q.concurrency == p.concurrency && q.*panel.field > value) above = false;
            }
          }
          svg += "<text x=\"" + num(x) + "\" y=\"" + num(y + (above ? -9 : 16)) +
                 "\" font-size=\"10\" fill=\"" + color + "\" text-anchor=\"middle\">" + value_label(value) +
                 "</text>\n";
        }
      }
    }
    svg += "</g>\n";
  }
  // Legend, three entries per row under the panels.
  for (size_t si = 0; si < series.size(); ++si) {
    const char* color = kColors[si % (sizeof(kColors) / sizeof(kColors[0]))];
    const double lx = 30 + static_cast<double>(si % 3) * kPanelWidth;
    const double ly = kPanelHeight + 40 + 24.0 * static_cast<double>(si / 3);
    svg += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 28) + "\" y2=\"" + num(ly) +
           "\" stroke=\"" + color + "\" stroke-width=\"2.2\"/>\n";
    svg += "<circle cx=\"" + num(lx + 14) + "\" cy=\"" + num(ly) + "\" r=\"4\" fill=\"" + color + "\"/>\n";
    svg += "<text x=\"" + num(lx + 36) + "\" y=\"" + num(ly + 4) + "\" font-size=\"12\">" +
           xml_escape(series[si].label) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace nibble::bench
