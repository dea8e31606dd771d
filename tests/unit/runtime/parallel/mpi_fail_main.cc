// One rank of an MPI job fails in the middle of a TokenRing prefill while the others wait for its
// messages. The failing rank aborts the group, so mpirun must terminate every rank and exit non-zero
// instead of hanging. Driven by run_mpi_fail.sh (which bounds the run with a timeout).
//   mpirun -np 4 sp_mpi_fail [--crash]    # --crash: the failing rank dies on SIGABRT instead
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/parallel/mpi_comm.h"
#include "runtime/parallel/sp_attention.h"

int main(int argc, char** argv) {
  using namespace tessera::parallel;
  const bool crash = argc > 1 && std::strcmp(argv[1], "--crash") == 0;
  auto env = MpiEnvironment::Init(&argc, &argv);
  if (!env.ok()) return 2;
  auto comm = MpiComm::CreateWorld();
  if (!comm.ok()) return 2;
  Communicator& c = **comm;
  const int64_t H = 2, D = 8, S = 16 * c.size();
  auto layout = SpLayout::Make({.total_tokens = S, .world = c.size(), .causal = true});
  auto sp = SequenceParallelAttention::Create(&c, {.n_heads = H, .n_kv_heads = H, .head_dim = D});
  if (!layout.ok() || !sp.ok()) return 2;
  const int64_t L = layout->local_tokens;
  std::vector<float> q(L * H * D, 0.1f), k(L * H * D, 0.2f), v(L * H * D, 0.3f), out(L * H * D);
  const bool failing = c.rank() == c.size() - 1;
  if (failing && crash) {
    std::fprintf(stderr, "rank %d: crashing\n", c.rank());
    std::abort();
  }
  // The failing rank passes a null K, which the validation rejects before any message is sent.
  absl::Status s =
      (*sp)->Prefill(*layout, {.q = q.data(), .k = failing ? nullptr : k.data(), .v = v.data(), .out = out.data()});
  if (!s.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", c.rank(), s.ToString().c_str());
    c.Abort(s);  // does not return
  }
  std::fprintf(stderr, "rank %d: finished without the failure (unexpected)\n", c.rank());
  return 0;
}
