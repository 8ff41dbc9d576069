#include "providers/sse.hpp"

namespace tailgate::providers {

// The index just past the blank line that ends the next event.
size_t SseFramer::event_end(std::string_view s, size_t from) {
    for (size_t i = s.find('\n', from); i != std::string_view::npos; i = s.find('\n', i + 1)) {
        if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
        if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
    }
    return std::string_view::npos;
}

bool SseFramer::data_of(std::string_view event, std::string& scratch, std::string_view& data) {
    int lines = 0;
    size_t pos = 0;
    while (pos < event.size()) {
        const size_t nl = event.find('\n', pos);
        std::string_view line = event.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? event.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.rfind("data:", 0) != 0) continue;  // comments, event:, id:, retry:
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (lines++ == 0) {
            data = line;
        } else {
            if (lines == 2) scratch.assign(data);
            scratch += '\n';
            scratch.append(line);
            data = scratch;
        }
    }
    return lines > 0;
}

}  // namespace tailgate::providers
