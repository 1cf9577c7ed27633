#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A covering of a piece's text: consecutive [begin, end) ranges, each a match or a gap.
struct Span {
  size_t begin, end;
  bool is_match;
};

// Turns match ranges into a covering of `length` bytes, as tokenizers' Pattern::find_matches does.
std::vector<Span> cover(const std::vector<std::pair<size_t, size_t>>& matches, size_t length, bool invert) {
  std::vector<Span> spans;
  if (length == 0) return {Span{0, 0, invert}};
  size_t prev = 0;
  for (const auto& [begin, end] : matches) {
    if (prev != begin) spans.push_back({prev, begin, invert});
    spans.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev != length) spans.push_back({prev, length, invert});
  return spans;
}

// Applies a split behaviour to a covering and appends the resulting non-empty pieces.
void emit_split(const Piece& piece, std::vector<Span> spans, Behavior behavior, std::vector<Piece>* out) {
  struct Keep {
    size_t begin, end;
    bool remove;
  };
  std::vector<Keep> keeps;
  keeps.reserve(spans.size());
  switch (behavior) {
    case Behavior::kIsolated:
      for (const Span& s : spans) keeps.push_back({s.begin, s.end, false});
      break;
    case Behavior::kRemoved:
      for (const Span& s : spans) keeps.push_back({s.begin, s.end, s.is_match});
      break;
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !keeps.empty()) {
          keeps.back().end = s.end;
        } else {
          keeps.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !keeps.empty()) {
          keeps.back().end = s.end;
        } else {
          keeps.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.is_match && !previous_match && !keeps.empty()) {
          keeps.back().begin = s.begin;
        } else {
          keeps.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      std::reverse(keeps.begin(), keeps.end());
      break;
    }
  }
  for (const Keep& k : keeps) {
    if (k.remove || k.end == k.begin) continue;
    out->push_back(Piece{piece.text.substr(k.begin, k.end - k.begin), piece.at_start && k.begin == 0});
  }
}

// Matches of a per-character predicate: every character for which pred holds is one match.
template <typename Pred>
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& text, Pred pred) {
  std::vector<std::pair<size_t, size_t>> matches;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t begin = pos;
    if (pred(next_code_point(text, &pos))) matches.emplace_back(begin, pos);
  }
  return matches;
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  base::Status pre_tokenize(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces->size() * 2);
    std::vector<std::pair<size_t, size_t>> matches;
    for (const Piece& piece : *pieces) {
      matches.clear();
      NIBBLE_TRY(pattern_.find_all(piece.text, &matches));
      emit_split(piece, cover(matches, piece.text.size(), invert_), behavior_, &out);
    }
    *pieces = std::move(out);
    return base::ok_status();
  }

 private:
  Regex pattern_;
  Behavior behavior_;
  bool invert_;
};

template <typename Pred>
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(Pred pred, Behavior behavior) : pred_(pred), behavior_(behavior) {}
  base::Status pre_tokenize(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : *pieces) {
      emit_split(piece, cover(char_matches(piece.text, pred_), piece.text.size(), false), behavior_, &out);
    }
    *pieces = std::move(out);
    return base::ok_status();
  }

 private:
  Pred pred_;
  Behavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> make_char_split(Pred pred, Behavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Pred>>(pred, behavior);
}

// ByteLevel: optional prefix space and GPT-2 split; the byte -> character mapping itself is left to
// the model, which works on raw bytes (see ParsedPreTokenizer::byte_level).
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<SplitPreTokenizer> split)
      : add_prefix_space_(add_prefix_space), split_(std::move(split)) {}
  base::Status pre_tokenize(std::vector<Piece>* pieces) const override {
    if (add_prefix_space_) {
      for (Piece& piece : *pieces) {
        if (piece.text.empty() || piece.text[0] != ' ') piece.text.insert(0, " ");
      }
    }
    if (split_) return split_->pre_tokenize(pieces);
    return base::ok_status();
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<SplitPreTokenizer> split_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  base::Status pre_tokenize(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    for (Piece& piece : *pieces) {
      std::string text;
      text.reserve(piece.text.size() + replacement_.size());
      for (const char c : piece.text) {
        if (c == ' ') {
          text += replacement_;
        } else {
          text.push_back(c);
        }
      }
      const bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts &&
          (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && piece.at_start))) {
        text.insert(0, replacement_);
      }
      Piece replaced{std::move(text), piece.at_start};
      if (!split_) {
        if (!replaced.text.empty()) out.push_back(std::move(replaced));
        continue;
      }
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t pos = replaced.text.find(replacement_); pos != std::string::npos;
           pos = replaced.text.find(replacement_, pos + replacement_.size())) {
        matches.emplace_back(pos, pos + replacement_.size());
      }
      emit_split(replaced, cover(matches, replaced.text.size(), false), Behavior::kMergedWithNext, &out);
    }
    *pieces = std::move(out);
    return base::ok_status();
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  base::Status pre_tokenize(std::vector<Piece>* pieces) const override {
    for (const auto& part : parts_) NIBBLE_TRY(part->pre_tokenize(pieces));
    return base::ok_status();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

base::Result<Behavior> parse_behavior(const nlohmann::json& spec, const std::string& where,
                                      Behavior fallback) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string name, json_string_or(spec, "behavior", where, ""));
  if (name.empty()) return fallback;
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  return base::unsupported(where + ".behavior: unsupported split behavior \"" + name + "\"");
}

// GPT-2's pre-tokenization pattern, used by ByteLevel with use_regex.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

base::Result<std::unique_ptr<PreTokenizer>> parse_one(const nlohmann::json& spec, const std::string& where,
                                                      bool* byte_level, int depth) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string type, json_type(spec, where));
  if (type == "Split") {
    NIBBLE_ASSIGN_OR_RETURN(Regex pattern, json_pattern(spec, where));
    NIBBLE_ASSIGN_OR_RETURN(const Behavior behavior, parse_behavior(spec, where, Behavior::kRemoved));
    NIBBLE_ASSIGN_OR_RETURN(const bool invert, json_bool(spec, "invert", where, false));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(pattern), behavior, invert));
  }
  if (type == "ByteLevel") {
    NIBBLE_ASSIGN_OR_RETURN(const bool add_prefix_space, json_bool(spec, "add_prefix_space", where, true));
    NIBBLE_ASSIGN_OR_RETURN(const bool use_regex, json_bool(spec, "use_regex", where, true));
    std::unique_ptr<SplitPreTokenizer> split;
    if (use_regex) {
      NIBBLE_ASSIGN_OR_RETURN(Regex pattern, Regex::compile(kGpt2Pattern, where + " (GPT-2 pattern)"));
      split = std::make_unique<SplitPreTokenizer>(std::move(pattern), Behavior::kIsolated, false);
    }
    *byte_level = true;
    return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(add_prefix_space, std::move(split)));
  }
  if (type == "Metaspace") {
    NIBBLE_ASSIGN_OR_RETURN(std::string replacement,
                            json_string_or(spec, "replacement", where, "\xE2\x96\x81"));
    size_t pos = 0;
    if (replacement.empty() || find_invalid_utf8(replacement) != std::string::npos ||
        (next_code_point(replacement, &pos), pos != replacement.size())) {
      return base::corrupt(where + ".replacement: must be exactly one character");
    }
    NIBBLE_ASSIGN_OR_RETURN(const std::string scheme_name, json_string_or(spec, "prepend_scheme", where, ""));
    PrependScheme scheme = PrependScheme::kAlways;
    if (scheme_name.empty()) {
      NIBBLE_ASSIGN_OR_RETURN(const bool add_prefix_space, json_bool(spec, "add_prefix_space", where, true));
      scheme = add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
    } else if (scheme_name == "always") {
      scheme = PrependScheme::kAlways;
    } else if (scheme_name == "first") {
      scheme = PrependScheme::kFirst;
    } else if (scheme_name == "never") {
      scheme = PrependScheme::kNever;
    } else {
      return base::unsupported(where + ".prepend_scheme: unsupported value \"" + scheme_name + "\"");
    }
    NIBBLE_ASSIGN_OR_RETURN(const bool split, json_bool(spec, "split", where, true));
    return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(std::move(replacement), scheme, split));
  }
  if (type == "Digits") {
    NIBBLE_ASSIGN_OR_RETURN(const bool individual, json_bool(spec, "individual_digits", where, false));
    return make_char_split(is_numeric, individual ? Behavior::kIsolated : Behavior::kContiguous);
  }
  if (type == "Punctuation") {
    NIBBLE_ASSIGN_OR_RETURN(const Behavior behavior, parse_behavior(spec, where, Behavior::kIsolated));
    return make_char_split(is_punctuation, behavior);
  }
  if (type == "WhitespaceSplit") return make_char_split(is_white_space, Behavior::kRemoved);
  if (type == "Whitespace") {
    NIBBLE_ASSIGN_OR_RETURN(Regex pattern,
                            Regex::compile(R"(\w+|[^\w\s]+)", where + " (Whitespace pattern)"));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(std::move(pattern), Behavior::kRemoved, true));
  }
  if (type == "Sequence") {
    if (depth >= kMaxSequenceDepth) return base::corrupt(where + ": Sequence nested too deeply");
    NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json* items, json_array(spec, "pretokenizers", where));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < items->size(); ++i) {
      const std::string item_where = where + ".pretokenizers[" + std::to_string(i) + "]";
      if (*byte_level) {
        return base::unsupported(item_where + ": a pre-tokenizer after ByteLevel is not supported");
      }
      NIBBLE_ASSIGN_OR_RETURN(auto part, parse_one((*items)[i], item_where, byte_level, depth + 1));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(parts)));
  }
  return base::unsupported(where + ": unsupported pre_tokenizer type \"" + type + "\"");
}

}  // namespace

base::Result<ParsedPreTokenizer> parse_pre_tokenizer(const nlohmann::json& spec, const std::string& where) {
  ParsedPreTokenizer parsed;
  if (spec.is_null()) return parsed;
  NIBBLE_ASSIGN_OR_RETURN(parsed.pre_tokenizer, parse_one(spec, where, &parsed.byte_level, 0));
  return parsed;
}

}  // namespace nibble::tokenizer
