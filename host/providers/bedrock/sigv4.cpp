#include "providers/bedrock/sigv4.hpp"

#include "providers/crypto.hpp"

#include <algorithm>
#include <ctime>

namespace tailgate::providers::bedrock {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Trimmed, inner runs of spaces folded to one.
std::string canonical_value(std::string_view v) {
    std::string out;
    bool space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

struct SignedHeaders {
    std::string canonical;  // "name:value\n" per header, sorted
    std::string names;      // "a;b;c"
};

SignedHeaders signed_headers(const SigV4Request& r) {
    std::vector<std::pair<std::string, std::string>> hs;
    hs.reserve(r.headers.size());
    for (const auto& [k, v] : r.headers) hs.emplace_back(lower(k), canonical_value(v));
    std::sort(hs.begin(), hs.end());
    SignedHeaders out;
    for (const auto& [k, v] : hs) {
        out.canonical += k + ':' + v + '\n';
        if (!out.names.empty()) out.names += ';';
        out.names += k;
    }
    return out;
}

std::string scope(std::string_view date, std::string_view region, std::string_view service) {
    std::string s(date);
    s += '/';
    s += region;
    s += '/';
    s += service;
    s += "/aws4_request";
    return s;
}

}  // namespace

std::string canonical_uri(std::string_view path) {
    return path.empty() ? std::string("/") : uri_encode(path, false);
}

std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> params;
    size_t pos = 0;
    while (pos < query.size()) {
        size_t amp = query.find('&', pos);
        if (amp == std::string_view::npos) amp = query.size();
        const std::string_view kv = query.substr(pos, amp - pos);
        if (!kv.empty()) {
            const size_t eq = kv.find('=');
            params.emplace_back(uri_encode(kv.substr(0, eq), true),
                                eq == std::string_view::npos ? "" : uri_encode(kv.substr(eq + 1), true));
        }
        pos = amp + 1;
    }
    std::sort(params.begin(), params.end());
    std::string out;
    for (const auto& [k, v] : params) {
        if (!out.empty()) out += '&';
        out += k + '=' + v;
    }
    return out;
}

std::string canonical_request(const SigV4Request& r) {
    const SignedHeaders h = signed_headers(r);
    std::string out(r.method);
    out += '\n';
    out += r.canonical_uri;
    out += '\n';
    out += r.canonical_query;
    out += '\n';
    out += h.canonical;
    out += '\n';
    out += h.names;
    out += '\n';
    out += r.payload_sha256_hex;
    return out;
}

std::string string_to_sign(const SigV4Request& r, std::string_view canonical_request_text) {
    std::string out = "AWS4-HMAC-SHA256\n";
    out += r.amz_date;
    out += '\n';
    out += scope(r.amz_date.substr(0, 8), r.region, r.service);
    out += '\n';
    out += hex(bytes_of(sha256(canonical_request_text)));
    return out;
}

std::string signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign_text) {
    const Digest k_date = hmac_sha256("AWS4" + std::string(secret), date);
    const Digest k_region = hmac_sha256(bytes_of(k_date), region);
    const Digest k_service = hmac_sha256(bytes_of(k_region), service);
    const Digest k_signing = hmac_sha256(bytes_of(k_service), "aws4_request");
    return hex(bytes_of(hmac_sha256(bytes_of(k_signing), string_to_sign_text)));
}

std::string authorization(const AwsKeys& keys, const SigV4Request& r) {
    const std::string date = r.amz_date.substr(0, 8);
    const std::string sts = string_to_sign(r, canonical_request(r));
    std::string out = "AWS4-HMAC-SHA256 Credential=" + keys.access_key_id + '/' + scope(date, r.region, r.service);
    out += ", SignedHeaders=" + signed_headers(r).names;
    out += ", Signature=" + signature(keys.secret_access_key, date, r.region, r.service, sts);
    return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[20];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

}  // namespace tailgate::providers::bedrock
