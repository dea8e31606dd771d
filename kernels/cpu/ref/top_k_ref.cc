#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels::ref {
namespace {

struct Entry {
  float val;
  int32_t idx;
};

// Ranking: larger value first, then lower index; NaN ranks below every number.
bool Better(const Entry& a, const Entry& b) {
  const bool an = std::isnan(a.val);
  const bool bn = std::isnan(b.val);
  if (an != bn) return bn;
  if (!an && a.val != b.val) return a.val > b.val;
  return a.idx < b.idx;
}

}  // namespace

// Keeps the k best seen so far in a heap whose top is the worst of them: O(n log k).
void TopK(const float* x, int64_t n, int64_t k, int32_t* idx, float* val) {
  std::vector<Entry> heap;
  heap.reserve(k);
  for (int64_t i = 0; i < n; ++i) {
    const Entry e{x[i], static_cast<int32_t>(i)};
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), Better);
    } else if (Better(e, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Better);
      heap.back() = e;
      std::push_heap(heap.begin(), heap.end(), Better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), Better);
  for (int64_t i = 0; i < k; ++i) {
    idx[i] = heap[i].idx;
    val[i] = heap[i].val;
  }
}

}  // namespace tessera::kernels::ref
