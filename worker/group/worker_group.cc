#include "worker/group/worker_group.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/sp_calibrate.h"

namespace tessera::worker {
namespace {

using parallel::Channel;
using parallel::CommRequest;

enum Kind : int32_t { kForward = 1, kStop = 2 };

// Waits for a request without spinning a core: polls, yielding for the first milliseconds (the
// next step of a busy group follows at once), then sleeping up to 2 ms between polls (an idle one).
absl::Status PollWait(CommRequest& rq) {
  const auto start = std::chrono::steady_clock::now();
  auto nap = std::chrono::microseconds(50);
  for (;;) {
    TS_ASSIGN_OR_RETURN(bool done, rq.Test());
    if (done) return absl::OkStatus();
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(5)) {
      std::this_thread::yield();
      continue;
    }
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::microseconds(2000));
  }
}

// Collective: fills in the auto policy's figures from measurements (the same on every rank).
absl::Status Calibrate(llm::Model* model, parallel::Communicator* comm, GroupOptions& options) {
  parallel::SpPolicy& policy = options.sp.policy;
  if (policy.mode != parallel::SpPolicy::Mode::kAuto || comm->size() < 2) return absl::OkStatus();
  const llm::ModelConfig& c = model->config();
  TS_ASSIGN_OR_RETURN(
      parallel::SpCalibration cal,
      parallel::CalibrateSp(
          comm, {.n_heads = c.num_attention_heads, .n_kv_heads = c.num_key_value_heads, .head_dim = c.head_dim},
          model->pool()));
  if (policy.link_bytes_per_second <= 0) policy.link_bytes_per_second = cal.link_bytes_per_second;
  policy.attention_flops_per_second = cal.attention_flops_per_second;
  return absl::OkStatus();
}

}  // namespace

// Layout: [num_seqs] then per sequence [n_tokens, start_pos_lo, start_pos_hi, n_blocks, all_logits,
// tokens..., blocks...].
std::vector<int32_t> EncodePlan(std::span<const llm::SequenceInput> batch) {
  std::vector<int32_t> w;
  w.push_back(static_cast<int32_t>(batch.size()));
  for (const llm::SequenceInput& s : batch) {
    w.push_back(static_cast<int32_t>(s.tokens.size()));
    w.push_back(static_cast<int32_t>(s.start_pos & 0x7fffffff));
    w.push_back(static_cast<int32_t>(s.start_pos >> 31));
    w.push_back(static_cast<int32_t>(s.block_table.size()));
    w.push_back(s.all_logits ? 1 : 0);
    w.insert(w.end(), s.tokens.begin(), s.tokens.end());
    w.insert(w.end(), s.block_table.begin(), s.block_table.end());
  }
  return w;
}

absl::Status DecodePlan(std::span<const int32_t> words, DecodedPlan* out) {
  size_t i = 0;
  auto take = [&](size_t n) -> absl::Status {
    if (words.size() - i < n) return absl::DataLossError(absl::StrCat("step plan truncated at word ", i));
    return absl::OkStatus();
  };
  TS_RETURN_IF_ERROR(take(1));
  const int32_t n = words[i++];
  if (n < 0) return absl::DataLossError("step plan: negative sequence count");
  out->tokens.assign(n, {});
  out->tables.assign(n, {});
  out->batch.assign(n, {});
  for (int32_t s = 0; s < n; ++s) {
    TS_RETURN_IF_ERROR(take(5));
    const int32_t nt = words[i], lo = words[i + 1], hi = words[i + 2], nb = words[i + 3], all = words[i + 4];
    i += 5;
    if (nt < 0 || nb < 0 || lo < 0 || hi < 0 || (all != 0 && all != 1)) {
      return absl::DataLossError(absl::StrCat("step plan: bad header of sequence ", s));
    }
    TS_RETURN_IF_ERROR(take(static_cast<size_t>(nt) + static_cast<size_t>(nb)));
    out->tokens[s].assign(words.begin() + i, words.begin() + i + nt);
    i += nt;
    out->tables[s].assign(words.begin() + i, words.begin() + i + nb);
    i += nb;
    out->batch[s] = {.tokens = out->tokens[s],
                     .start_pos = (int64_t{hi} << 31) | lo,
                     .block_table = out->tables[s],
                     .all_logits = all == 1};
  }
  if (i != words.size()) return absl::DataLossError("step plan: trailing words");
  return absl::OkStatus();
}

GroupLeader::~GroupLeader() { Stop(); }

absl::Status GroupLeader::Start(int64_t num_blocks, int64_t block_size) {
  int64_t shape[2] = {num_blocks, block_size};
  TS_RETURN_IF_ERROR(comm_->Broadcast(shape, sizeof(shape), 0));
  TS_RETURN_IF_ERROR(Calibrate(model_, comm_, options_));
  TS_ASSIGN_OR_RETURN(runner_, llm::SpRunner::Create(model_, comm_, num_blocks, block_size, options_.sp));
  return absl::OkStatus();
}

absl::Status GroupLeader::SendToFollowers(int32_t kind, std::span<const int32_t> body) {
  const int32_t header[2] = {kind, static_cast<int32_t>(body.size())};
  std::vector<CommRequest> reqs;
  for (int r = 1; r < comm_->size(); ++r) {
    TS_ASSIGN_OR_RETURN(CommRequest h, comm_->Isend(header, sizeof(header), r, Channel::kControl));
    reqs.push_back(std::move(h));
    if (!body.empty()) {
      TS_ASSIGN_OR_RETURN(CommRequest b,
                          comm_->Isend(body.data(), sizeof(int32_t) * body.size(), r, Channel::kControl));
      reqs.push_back(std::move(b));
    }
  }
  for (CommRequest& rq : reqs) TS_RETURN_IF_ERROR(rq.Wait());
  return absl::OkStatus();
}

absl::Status GroupLeader::Forward(std::span<const llm::SequenceInput> batch, llm::PagedKvCache& cache,
                                  std::vector<float>* logits) {
  if (runner_ == nullptr || stopped_) return absl::FailedPreconditionError("worker group: not started");
  // A bad batch fails here, before any rank has seen it.
  TS_RETURN_IF_ERROR(model_->Validate(batch, cache));
  const std::vector<int32_t> plan = EncodePlan(batch);
  absl::Status s = SendToFollowers(kForward, plan);
  if (s.ok()) s = runner_->Forward(batch, cache, logits);
  if (!s.ok()) {
    comm_->Abort(absl::InternalError(absl::StrCat("worker group step failed on rank 0: ", s.message())));
    return s;  // LocalComm only: MPI and NCCL do not return from Abort
  }
  std::lock_guard<std::mutex> lock(mu_);
  totals_ = runner_->totals();
  return absl::OkStatus();
}

void GroupLeader::Stop() {
  if (stopped_ || runner_ == nullptr) return;
  stopped_ = true;
  (void)SendToFollowers(kStop, {});
}

llm::SpTotals GroupLeader::totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return totals_;
}

absl::Status RunFollower(llm::Model* model, parallel::Communicator* comm, const GroupOptions& group_options) {
  GroupOptions options = group_options;
  int64_t shape[2] = {0, 0};
  TS_RETURN_IF_ERROR(comm->Broadcast(shape, sizeof(shape), 0));
  TS_RETURN_IF_ERROR(Calibrate(model, comm, options));
  TS_ASSIGN_OR_RETURN(llm::PagedKvCache cache, model->CreateKvCache(shape[0], shape[1]));
  TS_ASSIGN_OR_RETURN(auto runner, llm::SpRunner::Create(model, comm, shape[0], shape[1], options.sp));
  std::vector<int32_t> words;
  DecodedPlan plan;
  std::vector<float> logits;
  for (;;) {
    int32_t header[2] = {0, 0};
    TS_ASSIGN_OR_RETURN(CommRequest h, comm->Irecv(header, sizeof(header), 0, Channel::kControl));
    TS_RETURN_IF_ERROR(PollWait(h));
    if (header[0] == kStop) return absl::OkStatus();
    if (header[0] != kForward || header[1] < 0) {
      return absl::DataLossError(absl::StrCat("worker group: unknown message ", header[0], " from rank 0"));
    }
    words.resize(header[1]);
    if (!words.empty()) {
      TS_ASSIGN_OR_RETURN(CommRequest b,
                          comm->Irecv(words.data(), sizeof(int32_t) * words.size(), 0, Channel::kControl));
      TS_RETURN_IF_ERROR(b.Wait());
    }
    TS_RETURN_IF_ERROR(DecodePlan(words, &plan));
    TS_RETURN_IF_ERROR(runner->Forward(plan.batch, cache, &logits));
  }
}

}  // namespace tessera::worker
