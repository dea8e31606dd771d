#include "runtime/llm/sp_runner.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/sp_layout.h"

namespace tessera::llm {

using parallel::SpAlgorithm;
using parallel::SpDirection;
using parallel::SpLayout;

void SpTotals::Histogram::Observe(double seconds) {
  size_t b = 0;
  while (b < kStepBuckets.size() && seconds > kStepBuckets[b]) ++b;
  ++counts[b];
  sum += seconds;
}

void SpTotals::Histogram::Add(const Histogram& other) {
  for (size_t b = 0; b < counts.size(); ++b) counts[b] += other.counts[b];
  sum += other.sum;
}

void SpTotals::Add(const SpTotals& other) {
  for (size_t a = 0; a < algo.size(); ++a) {
    for (size_t d = 0; d < algo[a].bytes.size(); ++d) algo[a].bytes[d] += other.algo[a].bytes[d];
    algo[a].compute.Add(other.algo[a].compute);
    algo[a].wait.Add(other.algo[a].wait);
    algo[a].exposed_comm_seconds += other.algo[a].exposed_comm_seconds;
    algo[a].calls += other.algo[a].calls;
  }
  prefill_sequences += other.prefill_sequences;
  decode_sequences += other.decode_sequences;
}

namespace {

// SpTotals as a flat array of doubles (exact for counts below 2^53), to sum over ranks.
std::vector<double> Flatten(const SpTotals& t) {
  std::vector<double> v;
  for (const SpTotals::Algo& a : t.algo) {
    for (int64_t b : a.bytes) v.push_back(static_cast<double>(b));
    for (const SpTotals::Histogram* h : {&a.compute, &a.wait}) {
      for (int64_t c : h->counts) v.push_back(static_cast<double>(c));
      v.push_back(h->sum);
    }
    v.push_back(a.exposed_comm_seconds);
    v.push_back(static_cast<double>(a.calls));
  }
  v.push_back(static_cast<double>(t.prefill_sequences));
  v.push_back(static_cast<double>(t.decode_sequences));
  return v;
}

SpTotals Unflatten(const double* v) {
  SpTotals t;
  size_t i = 0;
  for (SpTotals::Algo& a : t.algo) {
    for (int64_t& b : a.bytes) b = static_cast<int64_t>(v[i++]);
    for (SpTotals::Histogram* h : {&a.compute, &a.wait}) {
      for (int64_t& c : h->counts) c = static_cast<int64_t>(v[i++]);
      h->sum = v[i++];
    }
    a.exposed_comm_seconds = v[i++];
    a.calls = static_cast<int64_t>(v[i++]);
  }
  t.prefill_sequences = static_cast<int64_t>(v[i++]);
  t.decode_sequences = static_cast<int64_t>(v[i++]);
  return t;
}

// Rank of the zigzag layout holding absolute position p, and its local row there.
std::pair<int, int64_t> Locate(const SpLayout& l, int64_t p) {
  const int64_t ci = p / l.chunk;
  const int64_t off = p - ci * l.chunk;
  if (ci < l.world) return {static_cast<int>(ci), off};
  return {static_cast<int>(2 * l.world - 1 - ci), l.chunk + off};
}

}  // namespace

// How one sequence of the batch runs on this rank.
struct SpRunner::Plan {
  bool prefill = false;
  SpLayout layout;   // prefill only
  int64_t row0 = 0;  // first local row
  int64_t rows = 0;  // local rows
};

absl::StatusOr<std::unique_ptr<SpRunner>> SpRunner::Create(Model* model, parallel::Communicator* comm,
                                                           int64_t num_blocks, int64_t block_size,
                                                           const Options& options) {
  if (model == nullptr || comm == nullptr) return absl::InvalidArgumentError("SpRunner: null model or communicator");
  if (num_blocks < 1 || block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("SpRunner: bad cache shape ", num_blocks, " × ", block_size));
  }
  if (!model->backend()->device().is_cpu()) {
    // The sequence-parallel attention exchanges host buffers (MpiComm, LocalComm); on GPUs it needs
    // NcclComm with device-side merges, which are not built yet.
    return absl::UnimplementedError(
        absl::StrCat("sequence parallelism runs on the cpu device only, not ", model->backend()->device().ToString()));
  }
  std::unique_ptr<SpRunner> r(new SpRunner(model, comm, num_blocks, block_size));
  const ModelConfig& c = model->config();
  r->policy_ = options.policy;
  TS_ASSIGN_OR_RETURN(r->attn_, parallel::SequenceParallelAttention::Create(comm, {.n_heads = c.num_attention_heads,
                                                                                   .n_kv_heads = c.num_key_value_heads,
                                                                                   .head_dim = c.head_dim,
                                                                                   .policy = options.policy,
                                                                                   .pool = model->pool()}));
  return r;
}

parallel::SpPolicyDecision SpRunner::PrefillChoice(int64_t tokens) const {
  const ModelConfig& c = model_->config();
  auto layout = SpLayout::Make({.total_tokens = std::max<int64_t>(tokens, 1),
                                .world = comm_->size(),
                                .causal = true,
                                .chunk_multiple = block_size_});
  return parallel::ChooseAlgorithm(policy_, {.n_heads = c.num_attention_heads,
                                             .n_kv_heads = c.num_key_value_heads,
                                             .head_dim = c.head_dim,
                                             .tokens_per_rank = layout.ok() ? layout->local_tokens : tokens,
                                             .world = comm_->size(),
                                             .causal = true});
}

void SpRunner::Record(const parallel::SpStats& stats, SpTotals& delta) const {
  SpTotals::Algo& a = delta.algo[static_cast<size_t>(stats.algorithm)];
  for (SpDirection d : {SpDirection::kQuery, SpDirection::kOutput, SpDirection::kKv}) {
    a.bytes[static_cast<size_t>(d)] += stats.BytesSent(d);
  }
  for (double s : stats.compute_seconds) a.compute.Observe(s);
  for (double s : stats.wait_seconds) a.wait.Observe(s);
  a.exposed_comm_seconds += stats.TotalWaitSeconds();
  if (comm_->rank() == 0) ++a.calls;
}

absl::Status SpRunner::ShareTotals(const SpTotals& delta) {
  const std::vector<double> mine = Flatten(delta);
  const size_t n = mine.size();
  std::vector<double> all(n * comm_->size());
  TS_RETURN_IF_ERROR(comm_->Allgather(mine.data(), sizeof(double) * n, all.data()));
  if (comm_->rank() != 0) return absl::OkStatus();
  for (int q = 0; q < comm_->size(); ++q) totals_.Add(Unflatten(all.data() + q * n));
  return absl::OkStatus();
}

absl::Status SpRunner::Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits) {
  TS_RETURN_IF_ERROR(model_->Validate(batch, cache));
  if (cache.block_size() != block_size_ || cache.num_blocks() != static_cast<int64_t>(owner_.size())) {
    return absl::InvalidArgumentError("SpRunner: the cache's shape differs from the one given to Create");
  }
  const ModelConfig& c = model_->config();
  const int N = comm_->size(), me = comm_->rank();
  const int64_t hidden = c.hidden_size, H = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim;
  const int64_t bs = block_size_;

  // 1. Rows of this rank, and the owners of the blocks this step writes.
  std::vector<Plan> plans(batch.size());
  std::vector<int32_t> row_tokens, positions;
  SpTotals delta;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& seq = batch[s];
    const int64_t n = static_cast<int64_t>(seq.tokens.size());
    const int32_t* table = seq.block_table.data();
    Plan& p = plans[s];
    p.row0 = static_cast<int64_t>(positions.size());
    if (seq.start_pos == 0) {
      p.prefill = true;
      TS_ASSIGN_OR_RETURN(p.layout,
                          SpLayout::Make({.total_tokens = n, .world = N, .causal = true, .chunk_multiple = bs}));
      p.rows = p.layout.local_tokens;
      for (int32_t pos : p.layout.Positions(me)) {
        positions.push_back(pos);
        row_tokens.push_back(pos < n ? seq.tokens[pos] : 0);  // padding rows: any id, masked out
      }
      for (int q = 0; q < N; ++q) {
        for (const SpLayout::Segment& g : p.layout.Segments(q)) {
          const int64_t end = std::min(g.pos_begin + g.length, n);
          for (int64_t b = g.pos_begin / bs; b * bs < end; ++b) owner_[table[b]] = q;
        }
      }
      if (me == 0) ++delta.prefill_sequences;
    } else {
      p.rows = n;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = seq.start_pos + i;
        positions.push_back(static_cast<int32_t>(pos));
        row_tokens.push_back(seq.tokens[i]);
        if (pos % bs != 0) continue;
        // A new block: to the rank holding the fewest blocks of this sequence (lowest on ties).
        std::vector<int64_t> held(N, 0);
        for (int64_t b = 0; b < pos / bs; ++b) ++held[owner_[table[b]]];
        owner_[table[pos / bs]] = static_cast<int32_t>(std::min_element(held.begin(), held.end()) - held.begin());
      }
      if (me == 0) ++delta.decode_sequences;
    }
  }
  const int64_t R = static_cast<int64_t>(positions.size());

  // 2. The layers.
  std::vector<float> x(R * hidden), q(R * H * D), k(R * Hkv * D), v(R * Hkv * D), attn(R * H * D);
  TS_RETURN_IF_ERROR(model_->Embed(row_tokens, x.data()));
  kernels::Backend& be = *model_->backend();
  kernels::ExecContext& ctx = *model_->context();
  std::vector<int32_t> slots;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    TS_RETURN_IF_ERROR(model_->ProjectQkv(l, x.data(), R, positions.data(), q.data(), k.data(), v.data()));
    for (size_t s = 0; s < batch.size(); ++s) {
      const SequenceInput& seq = batch[s];
      const Plan& p = plans[s];
      const int32_t* table = seq.block_table.data();
      const int64_t end = seq.start_pos + static_cast<int64_t>(seq.tokens.size());
      // This rank's new K/V rows into its blocks (consecutive rows as one write).
      for (int64_t i = p.row0; i < p.row0 + p.rows;) {
        auto mine = [&](int64_t row) {
          const int64_t pos = positions[row];
          return pos < end && owner_[table[pos / bs]] == me;
        };
        if (!mine(i)) {
          ++i;
          continue;
        }
        slots.clear();
        const int64_t first = i;
        for (; i < p.row0 + p.rows && mine(i); ++i) slots.push_back(cache.Slot(table, positions[i]));
        be.KvWrite(ctx, {.k_cache = cache.keys(l),
                         .v_cache = cache.values(l),
                         .k = &k[first * Hkv * D],
                         .v = &v[first * Hkv * D],
                         .slots = slots.data(),
                         .n = static_cast<int64_t>(slots.size()),
                         .kv_dim = Hkv * D});
      }
      if (p.prefill) {
        TS_RETURN_IF_ERROR(attn_->Prefill(p.layout, {.q = &q[p.row0 * H * D],
                                                     .k = &k[p.row0 * Hkv * D],
                                                     .v = &v[p.row0 * Hkv * D],
                                                     .positions = &positions[p.row0],
                                                     .out = &attn[p.row0 * H * D]}));
      } else {
        // Runs of consecutive blocks held here, each a paged shard.
        std::vector<parallel::SpKvShard> shards;
        const int64_t nblocks = (end + bs - 1) / bs;
        for (int64_t b = 0; b < nblocks;) {
          if (owner_[table[b]] != me) {
            ++b;
            continue;
          }
          int64_t e = b;
          while (e < nblocks && owner_[table[e]] == me) ++e;
          shards.push_back({.k = cache.keys(l),
                            .v = cache.values(l),
                            .num_kv = std::min(end, e * bs) - b * bs,
                            .k_pos0 = b * bs,
                            .block_table = table + b,
                            .block_size = bs});
          b = e;
        }
        TS_RETURN_IF_ERROR(attn_->Decode({.root = 0,
                                          .q = &q[p.row0 * H * D],
                                          .num_q = p.rows,
                                          .q_pos0 = seq.start_pos,
                                          .shards = shards,
                                          .out = &attn[p.row0 * H * D],
                                          .broadcast_output = true}));
      }
      Record(attn_->last_stats(), delta);
    }
    TS_RETURN_IF_ERROR(model_->FinishLayer(l, attn.data(), R, x.data()));
  }

  // 3. Rank 0 collects the rows whose logits are wanted, in batch order.
  std::vector<float> wanted;  // rank 0: [rows, hidden]
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& seq = batch[s];
    const Plan& p = plans[s];
    const int64_t n = static_cast<int64_t>(seq.tokens.size());
    const int64_t first = seq.all_logits ? 0 : n - 1;
    if (!p.prefill) {
      if (me == 0) {
        wanted.insert(wanted.end(), x.begin() + (p.row0 + first) * hidden, x.begin() + (p.row0 + n) * hidden);
      }
      continue;
    }
    // Prefill: wanted positions [first, n) are spread over the ranks.
    std::vector<std::vector<float>> from(N);
    std::vector<parallel::CommRequest> reqs;
    for (int64_t pos = first; pos < n; ++pos) {
      const auto [owner, row] = Locate(p.layout, pos);
      if (owner != me) continue;
      const float* src = &x[(p.row0 + row) * hidden];
      from[me].insert(from[me].end(), src, src + hidden);
    }
    if (me != 0) {
      if (!from[me].empty()) {
        TS_ASSIGN_OR_RETURN(parallel::CommRequest rq, comm_->Isend(from[me].data(), sizeof(float) * from[me].size(), 0,
                                                                   parallel::Channel::kControl));
        TS_RETURN_IF_ERROR(rq.Wait());
      }
      continue;
    }
    std::vector<int64_t> count(N, 0);
    for (int64_t pos = first; pos < n; ++pos) ++count[Locate(p.layout, pos).first];
    for (int q2 = 1; q2 < N; ++q2) {
      if (count[q2] == 0) continue;
      from[q2].resize(count[q2] * hidden);
      TS_ASSIGN_OR_RETURN(parallel::CommRequest rq, comm_->Irecv(from[q2].data(), sizeof(float) * from[q2].size(), q2,
                                                                 parallel::Channel::kControl));
      reqs.push_back(std::move(rq));
    }
    for (parallel::CommRequest& rq : reqs) TS_RETURN_IF_ERROR(rq.Wait());
    std::vector<int64_t> next(N, 0);
    for (int64_t pos = first; pos < n; ++pos) {
      const int owner = Locate(p.layout, pos).first;
      const float* src = &from[owner][next[owner]++ * hidden];
      wanted.insert(wanted.end(), src, src + hidden);
    }
  }
  if (me == 0) {
    const int64_t rows = static_cast<int64_t>(wanted.size()) / hidden;
    logits->resize(rows * c.vocab_size);
    TS_RETURN_IF_ERROR(model_->Logits(wanted.data(), rows, logits->data()));
  } else if (logits != nullptr) {
    logits->clear();
  }
  return ShareTotals(delta);
}

}  // namespace tessera::llm
