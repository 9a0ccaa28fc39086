// Reading the small JSON files of a model directory (config.json,
// preprocessor_config.json, model.safetensors.index.json) with errors that name them.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace ficoco {

// Whole file as bytes; throws Error "cannot read 'PATH': ..." if missing or unreadable.
std::string ReadTextFile(const std::string& path);
// Parses `text` and requires a JSON object; `origin` (usually the path) names it in errors.
nlohmann::json ParseJsonObject(const std::string& text, const std::string& origin);

}  // namespace ficoco
