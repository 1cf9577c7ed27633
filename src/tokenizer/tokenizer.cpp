#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

base::Result<AddedToken> parse_added_token(const nlohmann::json& spec, const std::string& where) {
  if (!spec.is_object()) return base::corrupt(where + ": expected an object");
  AddedToken token;
  const auto id = spec.find("id");
  if (id == spec.end() || !id->is_number_unsigned() || id->get<uint64_t>() >= (1u << 28)) {
    return base::corrupt(where + ".id: missing or not an unsigned integer below 2^28");
  }
  token.id = static_cast<uint32_t>(id->get<uint64_t>());
  NIBBLE_ASSIGN_OR_RETURN(token.content, json_string(spec, "content", where));
  if (find_invalid_utf8(token.content) != std::string::npos)
    return base::corrupt(where + ".content: invalid UTF-8");
  NIBBLE_ASSIGN_OR_RETURN(token.special, json_bool(spec, "special", where, false));
  NIBBLE_ASSIGN_OR_RETURN(token.normalized, json_bool(spec, "normalized", where, !token.special));
  NIBBLE_ASSIGN_OR_RETURN(token.lstrip, json_bool(spec, "lstrip", where, false));
  NIBBLE_ASSIGN_OR_RETURN(token.rstrip, json_bool(spec, "rstrip", where, false));
  NIBBLE_ASSIGN_OR_RETURN(token.single_word, json_bool(spec, "single_word", where, false));
  return token;
}

// Ids of a post-processor's special token given as [token, id] (Bert/Roberta) .
base::Result<uint32_t> pair_id(const nlohmann::json& spec, const char* key, const std::string& where) {
  const auto it = spec.find(key);
  if (it == spec.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_unsigned()) {
    return base::corrupt(where + "." + key + ": expected [token, id]");
  }
  return static_cast<uint32_t>((*it)[1].get<uint64_t>());
}

// Reads a single-sequence post-processor into prefix/suffix ids.
base::Status parse_post_processor(const nlohmann::json& spec, const std::string& where,
                                  std::vector<uint32_t>* prefix, std::vector<uint32_t>* suffix,
                                  int depth = 0) {
  if (spec.is_null()) return base::ok_status();
  NIBBLE_ASSIGN_OR_RETURN(const std::string type, json_type(spec, where));
  if (type == "ByteLevel") return base::ok_status();  // only changes offsets
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    NIBBLE_ASSIGN_OR_RETURN(const uint32_t cls, pair_id(spec, "cls", where));
    NIBBLE_ASSIGN_OR_RETURN(const uint32_t sep, pair_id(spec, "sep", where));
    prefix->insert(prefix->begin(), cls);
    suffix->push_back(sep);
    return base::ok_status();
  }
  if (type == "TemplateProcessing") {
    NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json* single, json_array(spec, "single", where));
    const auto specials = spec.find("special_tokens");
    std::vector<uint32_t> before, after;
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const nlohmann::json& item = (*single)[i];
      const std::string item_where = where + ".single[" + std::to_string(i) + "]";
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      const auto special = item.find("SpecialToken");
      if (special == item.end() || !special->is_object())
        return base::corrupt(item_where + ": unknown template item");
      NIBBLE_ASSIGN_OR_RETURN(const std::string name,
                              json_string(*special, "id", item_where + ".SpecialToken"));
      if (specials == spec.end() || !specials->is_object() || !specials->contains(name)) {
        return base::corrupt(item_where + ": special token \"" + name + "\" is not in special_tokens");
      }
      NIBBLE_ASSIGN_OR_RETURN(
          const nlohmann::json* ids,
          json_array((*specials)[name], "ids", where + ".special_tokens[\"" + name + "\"]"));
      for (const auto& id : *ids) {
        if (!id.is_number_unsigned())
          return base::corrupt(where + ".special_tokens[\"" + name + "\"].ids: not ids");
        (seen_sequence ? after : before).push_back(static_cast<uint32_t>(id.get<uint64_t>()));
      }
    }
    prefix->insert(prefix->begin(), before.begin(), before.end());
    suffix->insert(suffix->end(), after.begin(), after.end());
    return base::ok_status();
  }
  if (type == "Sequence") {
    if (depth >= kMaxSequenceDepth) return base::corrupt(where + ": Sequence nested too deeply");
    NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json* items, json_array(spec, "processors", where));
    for (size_t i = 0; i < items->size(); ++i) {
      NIBBLE_TRY(parse_post_processor((*items)[i], where + ".processors[" + std::to_string(i) + "]", prefix,
                                      suffix, depth + 1));
    }
    return base::ok_status();
  }
  return base::unsupported(where + ": unsupported post_processor type \"" + type + "\"");
}

// A special token in tokenizer_config.json: "text" or {"content": "text", ...}.
std::optional<std::string> config_token(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

base::Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json_string(std::string_view json,
                                                                     const std::string& origin) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return base::corrupt(origin + ": not valid JSON");
  if (!doc.is_object()) return base::corrupt(origin + ": expected a JSON object");
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  static const nlohmann::json kNull;
  auto field = [&](const char* key) -> const nlohmann::json& {
    const auto it = doc.find(key);
    return it == doc.end() ? kNull : *it;
  };
  if (!field("truncation").is_null() || !field("padding").is_null()) {
    // Only matters for batch encoding to a fixed length, which nibble never asks for.
  }
  NIBBLE_ASSIGN_OR_RETURN(tok->normalizer_, parse_normalizer(field("normalizer"), origin + ": normalizer"));
  NIBBLE_ASSIGN_OR_RETURN(ParsedPreTokenizer pre,
                          parse_pre_tokenizer(field("pre_tokenizer"), origin + ": pre_tokenizer"));
  tok->pre_tokenizer_ = std::move(pre.pre_tokenizer);
  const nlohmann::json& model = field("model");
  NIBBLE_ASSIGN_OR_RETURN(const std::string model_type, model.is_object() && !model.contains("type")
                                                            ? std::string("BPE")
                                                            : json_type(model, origin + ": model"));
  if (model_type != "BPE")
    return base::unsupported(origin + ": model: unsupported model type \"" + model_type + "\"");
  NIBBLE_ASSIGN_OR_RETURN(tok->model_, BpeModel::parse(model, pre.byte_level, origin + ": model"));
  NIBBLE_ASSIGN_OR_RETURN(tok->decoder_, parse_decoder(field("decoder"), origin + ": decoder"));
  NIBBLE_TRY(parse_post_processor(field("post_processor"), origin + ": post_processor", &tok->post_prefix_,
                                  &tok->post_suffix_));

  std::vector<AddedToken> added;
  const nlohmann::json& added_json = field("added_tokens");
  if (!added_json.is_null()) {
    if (!added_json.is_array()) return base::corrupt(origin + ": added_tokens: not an array");
    for (size_t i = 0; i < added_json.size(); ++i) {
      NIBBLE_ASSIGN_OR_RETURN(
          AddedToken token,
          parse_added_token(added_json[i], origin + ": added_tokens[" + std::to_string(i) + "]"));
      if (!token.content.empty()) added.push_back(std::move(token));
    }
  }
  tok->added_.build(std::move(added), tok->normalizer_.get());
  return tok;
}

base::Status Tokenizer::load_config_json(std::string_view json, const std::string& origin) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return base::corrupt(origin + ": not a JSON object");
  config_.bos_token = config_token(doc, "bos_token");
  config_.eos_token = config_token(doc, "eos_token");
  config_.pad_token = config_token(doc, "pad_token");
  config_.unk_token = config_token(doc, "unk_token");
  NIBBLE_ASSIGN_OR_RETURN(config_.add_bos_token, json_bool(doc, "add_bos_token", origin, false));
  NIBBLE_ASSIGN_OR_RETURN(config_.add_eos_token, json_bool(doc, "add_eos_token", origin, false));
  if (const auto it = doc.find("chat_template"); it != doc.end()) {
    if (it->is_string()) {
      config_.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& entry : *it) {
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
            entry["template"].is_string()) {
          config_.chat_template = entry["template"].get<std::string>();
        }
      }
    }
  }
  return base::ok_status();
}

base::Result<std::unique_ptr<Tokenizer>> Tokenizer::from_dir(const std::string& dir) {
  const std::string path = base::join_path(dir, "tokenizer.json");
  if (!base::file_exists(path)) return base::not_found(path + ": no such file");
  NIBBLE_ASSIGN_OR_RETURN(const std::string json, base::read_file(path));
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, from_json_string(json, path));
  const std::string config_path = base::join_path(dir, "tokenizer_config.json");
  if (base::file_exists(config_path)) {
    NIBBLE_ASSIGN_OR_RETURN(const std::string config, base::read_file(config_path));
    NIBBLE_TRY(tok->load_config_json(config, config_path));
  }
  return tok;
}

base::Result<std::vector<uint32_t>> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    return base::invalid_argument("input text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  }
  std::vector<uint32_t> ids;
  if (add_special_tokens) ids = post_prefix_;
  std::vector<Segment> segments = added_.extract_and_normalize(text, normalizer_.get());
  std::vector<Piece> pieces;
  for (Segment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(static_cast<uint32_t>(segment.id));
      continue;
    }
    if (segment.text.empty()) continue;
    pieces.clear();
    pieces.push_back(Piece{std::move(segment.text), segment.at_start});
    if (pre_tokenizer_) NIBBLE_TRY(pre_tokenizer_->pre_tokenize(&pieces));
    for (const Piece& piece : pieces) model_->tokenize(piece.text, &ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), post_suffix_.begin(), post_suffix_.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const uint32_t id : ids) {
    if (const AddedToken* added = added_.find_id(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->decoded);
      continue;
    }
    if (const std::string* token = model_->id_to_token(id)) tokens.push_back(*token);
  }
  if (decoder_) {
    decoder_->decode_chain(&tokens);
    std::string out;
    for (const std::string& t : tokens) out += t;
    return out;
  }
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out += tokens[i];
  }
  return out;
}

std::optional<uint32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* added = added_.find_content(token)) return added->id;
  return model_->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(uint32_t id) const {
  if (const AddedToken* added = added_.find_id(id)) return added->decoded;
  if (const std::string* token = model_->id_to_token(id)) return *token;
  return std::nullopt;
}

size_t Tokenizer::vocab_size() const {
  size_t n = model_->num_ids();
  for (const AddedToken& token : added_.tokens()) n = std::max<size_t>(n, size_t{token.id} + 1);
  return n;
}

bool Tokenizer::is_special(uint32_t id) const {
  const AddedToken* added = added_.find_id(id);
  return added != nullptr && added->special;
}

std::optional<uint32_t> Tokenizer::config_token_id(const std::optional<std::string>& token) const {
  if (!token) return std::nullopt;
  return token_to_id(*token);
}

std::optional<uint32_t> Tokenizer::bos_id() const {
  return config_token_id(config_.bos_token);
}
std::optional<uint32_t> Tokenizer::eos_id() const {
  return config_token_id(config_.eos_token);
}
std::optional<uint32_t> Tokenizer::pad_id() const {
  return config_token_id(config_.pad_token);
}

}  // namespace nibble::tokenizer
