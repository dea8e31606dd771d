// Incremental parsing of a server-sent event stream (the WHATWG "text/event-stream" format, as
// OpenAI-compatible servers send it) and interpretation of OpenAI streaming chunks.
//
//   SseParser parser;
//   for (each block of bytes received) {
//     for (const SseEvent& e : parser.Feed(bytes)) {
//       StreamChunk c = ParseOpenAiChunk(e.data, Endpoint::kChat);
//       ...
//     }
//   }
#ifndef TESSERA_BENCH_SERVE_SSE_H_
#define TESSERA_BENCH_SERVE_SSE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::bench {

struct SseEvent {
  std::string event;  // the "event:" field; empty means "message"
  std::string data;   // "data:" lines joined with '\n'
};

// Splits bytes into events. Lines end with "\r\n", "\n" or "\r" (also when the "\r\n" pair is
// split across two Feed calls); an empty line ends an event; lines starting with ':' are comments;
// one space after the field's colon is dropped. An event with no data lines is not reported.
class SseParser {
 public:
  std::vector<SseEvent> Feed(std::string_view bytes);
  // Bytes of an unfinished line or event are still held (the stream ended mid-event).
  bool HasPartial() const { return !line_.empty() || has_data_; }

 private:
  void ProcessLine(std::vector<SseEvent>* out);

  std::string line_;
  bool last_was_cr_ = false;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
};

enum class Endpoint { kCompletions, kChat };

// What one OpenAI streaming chunk (`data: {json}`) means for the benchmark.
struct StreamChunk {
  bool done = false;                     // the "[DONE]" sentinel
  bool carries_tokens = false;           // a choice with generated output (the chat role preamble is not)
  bool is_error = false;                 // {"error": {...}} or unparsable data
  std::string error;                     // "type: message" of the error, or the parse failure
  std::string text;                      // generated text in this chunk
  std::optional<int> prompt_tokens;      // from "usage", when present and not null
  std::optional<int> completion_tokens;  // from "usage"
  std::string finish_reason;             // empty while generating
};

StreamChunk ParseOpenAiChunk(std::string_view data, Endpoint endpoint);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVE_SSE_H_
