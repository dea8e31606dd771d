#include "kernels/backend.h"

#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tessera::kernels {

std::string Device::ToString() const {
  return type == DeviceType::kCpu ? std::string("cpu") : absl::StrCat("cuda:", index);
}

absl::StatusOr<Device> ParseDevice(std::string_view text) {
  if (text == "cpu") return Device::Cpu();
  if (text == "cuda") return Device::Cuda(0);
  if (text.starts_with("cuda:")) {
    const std::string_view digits = text.substr(5);
    int index = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() && index >= 0) {
      return Device::Cuda(index);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("device '", std::string(text), "': expected cpu, cuda or cuda:N"));
}

std::string_view OpKindName(OpKind op) {
  switch (op) {
    case OpKind::kLinear:
      return "linear";
    case OpKind::kEmbedding:
      return "embedding";
    case OpKind::kRmsNorm:
      return "rms_norm";
    case OpKind::kRope:
      return "rope";
    case OpKind::kSiluMul:
      return "silu_mul";
    case OpKind::kAdd:
      return "add";
    case OpKind::kKvWrite:
      return "kv_write";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kMoeRoute:
      return "moe_route";
    case OpKind::kGatherRows:
      return "gather_rows";
    case OpKind::kScatterAddRows:
      return "scatter_add_rows";
    case OpKind::kSigmoidGateAdd:
      return "sigmoid_gate_add";
  }
  return "?";
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    owner_ = std::exchange(other.owner_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::Reset() {
  if (owner_ != nullptr && data_ != nullptr) owner_->Free(data_, bytes_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

absl::StatusOr<DeviceBuffer> Backend::UploadF32(ExecContext& ctx, std::span<const float> host) {
  absl::StatusOr<DeviceBuffer> buf = Allocate(std::max<size_t>(host.size_bytes(), sizeof(float)));
  if (!buf.ok()) return buf.status();
  if (!host.empty()) CopyToDevice(ctx, buf->data(), host.data(), host.size_bytes());
  return buf;
}

}  // namespace tessera::kernels
