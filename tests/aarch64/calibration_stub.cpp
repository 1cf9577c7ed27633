// Stands in for src/quant/calibration.cpp in the aarch64 test build (see CMakeLists.txt): the
// greedy check quantizes without calibration data, so these are never reached.
#include "quant/calibration.h"

namespace nibble::quant {

base::Result<std::vector<int32_t>> read_token_file(const std::string& path, const std::string&, int64_t) {
  return base::unsupported(path + ": calibration files are not built into the aarch64 kernel tests");
}

base::Result<std::map<std::string, float>> collect_activation_amax(const std::string& model_dir,
                                                                   const std::vector<int32_t>&, int64_t,
                                                                   int) {
  return base::unsupported(model_dir + ": calibration is not built into the aarch64 kernel tests");
}

}  // namespace nibble::quant
