#include "server/tokenizer/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {

void NormalizeUnicode(NormalizationForm form, std::string* text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalizationForm::kNfc:
      n = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalizationForm::kNfd:
      n = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalizationForm::kNfkc:
      n = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormalizationForm::kNfkd:
      n = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || n == nullptr) return;
  // Fast path: most text is already normalized.
  const icu::StringPiece piece(text->data(), static_cast<int32_t>(text->size()));
  if (n->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text->size()));
  n->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_SUCCESS(status)) *text = std::move(out);
}

bool IsWhiteSpace(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE); }

bool IsWordChar(char32_t c) {
  const auto u = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL)) return true;
  const int8_t t = u_charType(u);
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION;
}

bool IsNumeric(char32_t c) {
  const int8_t t = u_charType(static_cast<UChar32>(c));
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}

void AppendLowercase(char32_t c, std::string* out) {
  UChar src[2];
  int32_t src_len = 0;
  UBool error = false;
  U16_APPEND(src, src_len, 2, static_cast<UChar32>(c), error);
  if (error) {
    AppendUtf8(c, out);
    return;
  }
  UChar dst[8];
  UErrorCode status = U_ZERO_ERROR;
  // A lone code point has no casing context, so this is the per-character full mapping.
  const int32_t n = u_strToLower(dst, 8, src, src_len, "", &status);
  if (U_FAILURE(status)) {
    AppendUtf8(c, out);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 cp;
    U16_NEXT(dst, i, n, cp);
    AppendUtf8(static_cast<char32_t>(cp), out);
  }
}

}  // namespace tessera::tokenizer
