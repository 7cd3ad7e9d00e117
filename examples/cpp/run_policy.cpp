// Run an exported paretochain policy (policy.pt, TorchScript) from C++ with libtorch.
//
//   run_policy POLICY.pt                      print the metadata, act once on a zero observation
//   run_policy POLICY.pt INPUTS.pt OUT.pt     act on torch.save((obs, preference, action_mask))
//                                             and write the actions with torch::pickle_save
//
// The policy checks its inputs itself: a wrong shape or dtype, NaN or inf, or a mask row
// that allows nothing raises an exception whose last line reads "policy input: ..."; this
// program then prints that line and exits with status 2.
#include <torch/script.h>
#include <torch/serialize.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A whole-number field of metadata.json, e.g. "dim" inside "observation" (no JSON library needed here).
int64_t metadata_int(const std::string& json, const std::string& block, const std::string& field) {
  const auto start = json.find("\"" + block + "\"");
  std::smatch match;
  const std::string rest = json.substr(start == std::string::npos ? 0 : start);
  if (!std::regex_search(rest, match, std::regex("\"" + field + "\":\\s*(\\d+)"))) {
    throw std::runtime_error("metadata.json has no " + block + "." + field);
  }
  return std::stoll(match[1]);
}

int64_t count_objectives(const std::string& json) {
  std::smatch match;
  if (!std::regex_search(json, match, std::regex("\"objective_names\":\\s*\\[([^\\]]*)\\]"))) {
    throw std::runtime_error("metadata.json has no objective_names");
  }
  const std::string names = match[1];
  return std::count(names.begin(), names.end(), '"') / 2;
}

// One line: the last line of a TorchScript error carries the policy's own words.
std::string last_line(const std::string& text) {
  std::string line, last;
  std::istringstream lines(text);
  while (std::getline(lines, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    std::cerr << "usage: run_policy POLICY.pt [INPUTS.pt OUT.pt]\n";
    return 2;
  }
  try {
    torch::jit::ExtraFilesMap extra{{"metadata.json", ""}};
    torch::jit::script::Module policy = torch::jit::load(argv[1], torch::kCPU, extra);
    policy.eval();
    const std::string& metadata = extra["metadata.json"];
    torch::NoGradGuard no_grad;

    torch::Tensor obs, preference, mask;
    if (argc == 4) {
      const auto inputs = torch::pickle_load(read_file(argv[2])).toTuple();
      obs = inputs->elements()[0].toTensor();
      preference = inputs->elements()[1].toTensor();
      mask = inputs->elements()[2].toTensor();
    } else {
      const int64_t obs_dim = metadata_int(metadata, "observation", "dim");
      const int64_t mask_dim = metadata_int(metadata, "action", "mask_dim");
      const int64_t k = count_objectives(metadata);
      std::cout << "observation dim " << obs_dim << ", objectives " << k << ", mask dim " << mask_dim << "\n";
      obs = torch::zeros({1, obs_dim}, torch::kFloat32);               // (B, obs_dim), float32
      preference = torch::full({1, k}, 1.0 / k, torch::kFloat32);      // (B, k), weights summing to 1
      mask = torch::ones({1, mask_dim}, torch::kBool);                 // (B, mask_dim), bool
    }
    torch::Tensor action = policy.forward({obs, preference, mask}).toTensor();
    if (argc == 4) {
      const std::vector<char> bytes = torch::pickle_save(action);
      std::ofstream(argv[3], std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    } else {
      std::cout << "action " << action << "\n";
    }
  } catch (const std::exception& error) {  // c10::Error and TorchScript's exceptions
    std::cerr << "run_policy: " << last_line(error.what()) << "\n";
    return 2;
  }
  return 0;
}
