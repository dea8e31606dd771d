#include "kernels/cpu/isa.h"

#include <cpuid.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace tessera::kernels {
namespace {

// F16C is read from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know it.
bool HasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & bit_F16C) != 0;
}

Isa BestSupported() {
  if (IsaSupported(Isa::kAvx512)) return Isa::kAvx512;
  if (IsaSupported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa DetectActive() {
  const Isa best = BestSupported();
  const char* env = std::getenv("TESSERA_CPU_ISA");
  if (env == nullptr || *env == '\0') return best;
  for (Isa isa : kAllIsas) {
    if (IsaName(isa) != env) continue;
    if (IsaSupported(isa)) return isa;
    std::fprintf(stderr, "tessera: TESSERA_CPU_ISA=%s is not supported by this CPU; using %s\n", env,
                 std::string(IsaName(best)).c_str());
    return best;
  }
  std::fprintf(stderr, "tessera: unknown TESSERA_CPU_ISA=%s (expected scalar|avx2|avx512); using %s\n", env,
               std::string(IsaName(best)).c_str());
  return best;
}

}  // namespace

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && HasF16c();
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && HasF16c();
  }
  return false;
}

Isa ActiveIsa() {
  static const Isa active = DetectActive();
  return active;
}

const OpTable& OpsFor(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return Avx2OpTable();
    case Isa::kAvx512:
      return Avx512OpTable();
    case Isa::kScalar:
      break;
  }
  return RefOpTable();
}

const OpTable& ActiveOps() {
  static const OpTable& table = OpsFor(ActiveIsa());
  return table;
}

}  // namespace tessera::kernels
