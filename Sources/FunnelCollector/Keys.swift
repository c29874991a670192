import Foundation
import FunnelBase
import Yams

/// What a key may do: `ingest` posts events, `report` reads reports, `admin` does both.
public enum KeyScope: String, Sendable, CaseIterable, Codable {
    case ingest, report, admin

    /// Whether a key of this scope may use a route that needs `needed`.
    public func allows(_ needed: KeyScope) -> Bool { self == .admin || self == needed }
}

/// One API key as stored: its public id, scope and the SHA-256 of the whole key (the key itself
/// is shown once, when created, and never stored).
public struct APIKey: Sendable, Equatable, Codable {
    public var id: String
    public var scope: KeyScope
    public var sha256: String
    public var created: String
}

/// The keys file (`--keys keys.yaml`): the collector's API keys, as digests.
///
/// A key reads `fnl_<id>_<secret>`: an 8-hex-digit id that names it in the file and a 256-bit
/// secret from the system's cryptographic generator, in 64 hex digits. A presented key is looked up
/// by its id and its digest compared with the stored one in constant time.
public struct KeyRing: Sendable {
    public var keys: [APIKey] = []

    public init(keys: [APIKey] = []) { self.keys = keys }

    struct File: Codable { var keys: [APIKey] }

    /// Reads the keys file; a missing file is an empty ring.
    public static func load(_ path: String) throws -> KeyRing {
        guard FileManager.default.fileExists(atPath: path) else { return KeyRing() }
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return KeyRing() }
            let file = try YAMLDecoder().decode(File.self, from: text)
            for key in file.keys where key.sha256.count != 64 || SHA256.bytes(hex: key.sha256) == nil {
                throw StoreError("keys file \(path): key \(key.id) has no valid sha256 (64 hex digits); create keys with `funnel keys create`")
            }
            return KeyRing(keys: file.keys)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("keys file \(path) is not a valid keys file (\(error)); create keys with `funnel keys create`")
        }
    }

    /// Writes the ring atomically (a temporary file renamed over the old one), readable only by
    /// its owner.
    public func save(_ path: String) throws {
        let text = try YAMLEncoder().encode(File(keys: keys))
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw StoreError("cannot write the keys file \(path): check its folder's permissions")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw StoreError("cannot replace the keys file \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Creates a key of `scope`: adds its digest to the ring and returns the key, to be shown once.
    public mutating func create(scope: KeyScope, now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        func hex(_ count: Int) -> String {
            SHA256.hex((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        var id = hex(4)
        while keys.contains(where: { $0.id == id }) { id = hex(4) }
        let key = "fnl_\(id)_\(hex(32))"
        let created = ISO8601DateFormatter().string(from: now)
        keys.append(APIKey(id: id, scope: scope, sha256: SHA256.hex(SHA256.digest(Array(key.utf8))), created: created))
        return key
    }

    /// The stored key that `presented` is, or nil.
    public func authenticate(_ presented: String) -> APIKey? {
        let parts = presented.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "fnl", let entry = keys.first(where: { $0.id == parts[1] }),
              let stored = SHA256.bytes(hex: entry.sha256) else { return nil }
        return SHA256.constantTimeEqual(SHA256.digest(Array(presented.utf8)), stored) ? entry : nil
    }
}

extension SHA256 {
    /// The bytes of a hexadecimal string, or nil.
    public static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        for k in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[k]), let low = value(digits[k + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}

/// Requests per second per key: a token bucket of `burst` tokens refilled at `rate` a second.
public final class RateLimiter: @unchecked Sendable {
    let rate: Double
    let burst: Double
    let lock = NSLock()
    var buckets: [String: (tokens: Double, at: Double)] = [:]

    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// nil when `key` may go on (a token is taken); else the seconds until it may.
    public func take(_ key: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        var bucket = buckets[key] ?? (burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            buckets[key] = bucket
            return nil
        }
        buckets[key] = bucket
        return (1 - bucket.tokens) / rate
    }
}
