#pragma once
// Text helpers at the bottom of the library: numbers as text, ASCII case, file extensions, UTF-8
// checks, file names made safe for JSON, CSV and line-based files, CSV quoting.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace stam {

// One number through a printf pattern ("%.1f"), for tables and labels.
std::string format_number(const char* pattern, double v);
// `v` rounded to 1/`per_unit` (10: tenths), as the double nearest that decimal, which JSON
// prints short (866.8; multiplying by 0.1 instead gave 866.8000000000001).
double round_to(double v, double per_unit);
// `s` with its ASCII letters in lower case: for file extensions and names compared as such.
std::string ascii_lower(std::string s);
// Lower-case extensions, without the dot, of the files taken for videos in a folder (by batch
// without --ext, and to tell a folder of videos from a frames folder in an error).
const std::vector<std::string>& video_extensions();
// Case-insensitive match of the path's last extension against `exts` (lower-case, no dot).
bool has_extension(const std::string& path, const std::vector<std::string>& exts);

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8 (overlong
// forms, surrogates and code points above U+10FFFF included).
size_t utf8_length(std::string_view s, size_t i);

// A file name as JSON and CSV can hold it: each byte that is not part of a valid UTF-8 sequence
// written as \xHH (as bash's $'...' quoting does), and so is a backslash (\x5C), so that every
// backslash starts an escape: names differing only in such bytes (Latin-1 names, say) stay
// apart, and none can be spelled as another's escape. Other names are unchanged.
std::string path_text(const std::string& path);
// path_text() for a text file of one name a line: characters a reader may take for a line break
// (control characters such as a newline, U+0085, U+2028, U+2029) as \xHH bytes too.
std::string path_line(const std::string& path);
// A path in a message: path_line() in single quotes, so that a name with a newline or an escape
// sequence can neither break a log line nor drive the terminal.
std::string quoted_path(const std::string& path);
// `text` with only its invalid UTF-8 bytes as \xHH: for text that may already hold path_text()
// escapes (a record read back), whose backslashes must stay as they are.
std::string valid_utf8_text(const std::string& text);

// RFC 4180 quoting, made stricter so any consumer is safe: a field is quoted when it holds a
// comma, quote, CR, LF, space/tab or any non-ASCII byte, and inner quotes are doubled.
std::string csv_field(std::string_view field);

}  // namespace stam
