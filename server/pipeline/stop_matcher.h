// Stop strings over streamed text: matches stop strings that span token (and chunk) boundaries,
// holding back only as much text as could still turn out to be the start of a stop string.
//
//   StopMatcher stop({"\n\nUser:", "###"}, /*include_stop=*/false);
//   for (const std::string& piece : decoded_pieces) {
//     Send(stop.Feed(piece));
//     if (stop.stopped()) { Abort(); break; }   // stop.matched() says which string ended it
//   }
//   if (!stop.stopped()) Send(stop.Flush());
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::server {

class StopMatcher {
 public:
  StopMatcher(std::vector<std::string> stops, bool include_stop);

  // Adds text; returns the text that is now certain to be output. After a match, returns the text
  // before the stop string (and the stop string itself when include_stop), then only "".
  std::string Feed(std::string_view text);
  // Returns the held-back tail at the end of generation ("" after a match).
  std::string Flush();

  bool stopped() const { return matched_.has_value(); }
  const std::optional<std::string>& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  size_t max_len_ = 0;
  std::string pending_;  // text not yet emitted: a possible beginning of a stop string
  std::optional<std::string> matched_;
};

}  // namespace tessera::server
