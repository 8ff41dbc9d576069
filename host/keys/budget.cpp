#include "keys/budget.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace tailgate::keys {

namespace {

using namespace std::chrono;

bool digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

int64_t to_int(std::string_view s) {
    int64_t n = 0;
    for (char c : s) {
        if (n > 1'000'000'000) return -1;
        n = n * 10 + (c - '0');
    }
    return n;
}

}  // namespace

TimeMs now_ms() { return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(); }

std::string key_name_of(const std::string& key) {
    return key.size() < 8 ? std::string("sk-...") : "sk-..." + key.substr(key.size() - 4);
}

std::string new_key() {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no random bytes for a new key");
    static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out = "sk-";
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char b : raw) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
    return out;
}

std::optional<Period> parse_period(std::string_view t) {
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    Period p;
    auto unit = [&](std::string_view suffix, int64_t ms) -> bool {
        if (t.size() <= suffix.size() || t.substr(t.size() - suffix.size()) != suffix) return false;
        const std::string_view n = t.substr(0, t.size() - suffix.size());
        if (!digits(n)) return false;
        const int64_t v = to_int(n);
        if (v <= 0) return false;
        if (ms == 0) p.months = static_cast<int>(std::min<int64_t>(v, 1200));
        else p.ms = v * ms;
        return true;
    };
    if (unit("mo", 0) || unit("s", 1000) || unit("m", 60'000) || unit("h", 3'600'000) || unit("d", 86'400'000) ||
        unit("w", 7 * 86'400'000LL))
        return p;
    return std::nullopt;
}

TimeMs advance(TimeMs t, const Period& p) {
    if (p.months == 0) return t + p.ms;
    const sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(t)));
    const milliseconds in_day = milliseconds(t) - day.time_since_epoch();
    year_month_day ymd{day};
    ymd += months(p.months);
    if (!ymd.ok()) ymd = ymd.year() / ymd.month() / last;  // Jan 31 + 1mo -> Feb 28/29
    return (sys_days(ymd).time_since_epoch() + in_day).count();
}

TimeMs next_reset(TimeMs reset_at, const Period& p, TimeMs now) {
    TimeMs t = reset_at > 0 ? reset_at : now;
    if (t > now) return t;
    if (p.months == 0 && p.ms > 0) return t + ((now - t) / p.ms + 1) * p.ms;
    for (int i = 0; i < 100000 && t <= now; ++i) t = advance(t, p);
    return t;
}

std::string iso_time(TimeMs t) {
    const sys_time<milliseconds> tp{milliseconds(t)};
    const sys_days day = floor<days>(tp);
    const year_month_day ymd{day};
    const hh_mm_ss<milliseconds> hms{tp - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

std::optional<TimeMs> parse_iso_time(std::string_view s) {
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (s.size() < 10 || std::sscanf(std::string(s.substr(0, 10)).c_str(), "%4d-%2d-%2d", &y, &mo, &d) != 3)
        return std::nullopt;
    size_t i = 10;
    if (i < s.size() && (s[i] == 'T' || s[i] == ' ')) {
        if (s.size() < i + 9 || std::sscanf(std::string(s.substr(i + 1, 8)).c_str(), "%2d:%2d:%2d", &h, &mi, &sec) != 3)
            return std::nullopt;
        i += 9;
    }
    int64_t frac_ms = 0;
    if (i < s.size() && s[i] == '.') {
        int64_t scale = 100;
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) frac_ms += (s[i] - '0') * scale;
    }
    int64_t offset_min = 0;
    if (i < s.size()) {
        if (s[i] == 'Z' && i + 1 == s.size()) {
        } else if ((s[i] == '+' || s[i] == '-') && s.size() - i == 6 && s[i + 3] == ':') {
            int oh, om;
            if (std::sscanf(std::string(s.substr(i + 1)).c_str(), "%2d:%2d", &oh, &om) != 2) return std::nullopt;
            offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        } else {
            return std::nullopt;
        }
    }
    const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    const int64_t ms = sys_days(ymd).time_since_epoch() / milliseconds(1) + (h * 3600 + mi * 60 + sec) * 1000LL +
                       frac_ms - offset_min * 60'000;
    return ms;
}

}  // namespace tailgate::keys
