import CZlib
import Foundation
import FunnelBase
import FunnelEvents

/// One valid event as the collector stores it: its line (the event's JSON on one line) and the
/// keys the store indexes.
public struct StoredEvent: Sendable, Equatable {
    public var userID: String
    public var eventID: String
    public var ts: Int64
    public var line: [UInt8]

    public init(userID: String, eventID: String, ts: Int64, line: [UInt8]) {
        self.userID = userID
        self.eventID = eventID
        self.ts = ts
        self.line = line
    }
}

/// One rejected event of a request: its position in the body, why, and its raw text.
public struct QuarantinedEvent: Sendable, Equatable {
    /// 0-based: the element of a JSON array body, or the line of an NDJSON body (blank lines count).
    public var index: Int
    public var reason: QuarantineReason
    public var field: String?
    public var message: String
    public var raw: [UInt8]
}

/// A request body split into valid events and quarantined ones, validated by the same parser as
/// `funnel report --events` (DESIGN.md §2, §7 "Validation").
public struct IngestBatch: Sendable {
    public var events: [StoredEvent] = []
    public var quarantined: [QuarantinedEvent] = []
    /// The request's `Idempotency-Key`: a batch sent again under the same key is answered as the
    /// first time and changes nothing.
    public var idempotencyKey: String? = nil
    public init() {}

    /// The answer to the request, given what its commit came to.
    func answer(_ outcome: CommitOutcome) -> [UInt8] {
        let quarantined: [JSONValue] = self.quarantined.map { q in
            .object([("index", .int(q.index)), ("reason", .string(q.reason.rawValue)), ("field", q.field.map { .string($0) } ?? .null)])
        }
        let document: JSONValue = .object([("accepted", .int(outcome.accepted)), ("duplicates", .int(outcome.duplicates)),
                                           ("quarantined", .array(quarantined))])
        return Array((document.serialized() + "\n").utf8)
    }
}

/// A body the collector cannot split into events (the whole request is refused with 400).
public struct BodyError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// The largest body accepted by default, compressed or inflated (`--max-body-bytes`).
public let defaultMaxBodyBytes = 16 << 20

/// A body inflated past its limit (answered with 413).
public struct BodyTooLarge: Error, Sendable {}

/// The events of a request body: a JSON array of event objects, or NDJSON (one event per line).
///
/// Array elements that span several lines are joined onto one (a newline outside a string is
/// whitespace, and one inside a string is invalid JSON, so the event is unchanged). An array that
/// is not valid JSON cannot be split and is refused as a whole, naming the byte; a line of NDJSON
/// that is not valid JSON is quarantined like any other invalid event.
public func splitBody(_ body: [UInt8]) throws(BodyError) -> IngestBatch {
    var batch = IngestBatch()
    var parser = EventLineParser()
    var event = ParsedEvent()
    func take(_ line: UnsafeBufferPointer<UInt8>, index: Int) {
        parser.arena.removeAll()
        if let r = parser.parse(line, into: &event) {
            batch.quarantined.append(QuarantinedEvent(index: index, reason: r.reason, field: r.field, message: r.message, raw: Array(line)))
            return
        }
        var text = Array(line)
        for k in text.indices where text[k] == 0x0A || text[k] == 0x0D { text[k] = 0x20 }
        batch.events.append(StoredEvent(userID: parser.arena.string(event.user) ?? "", eventID: parser.arena.string(event.eventID) ?? "",
                                        ts: event.ts, line: text))
    }
    try body.withUnsafeBufferPointer { (all) throws(BodyError) in
        var start = 0
        if all.count >= 3 && all[0] == 0xEF && all[1] == 0xBB && all[2] == 0xBF { start = 3 }
        var scanner = JSONScanner(all, from: start)
        scanner.skipWhitespace()
        if scanner.peek() == 0x5B {
            scanner.index += 1
            scanner.skipWhitespace()
            if scanner.peek() == 0x5D { return }
            var index = 0
            while true {
                scanner.skipWhitespace()
                let from = scanner.index
                do throws(JSONSyntaxError) {
                    _ = try scanner.scanValue(depth: 1)
                    take(UnsafeBufferPointer(rebasing: all[from..<scanner.index]), index: index)
                    index += 1
                    scanner.skipWhitespace()
                    guard let c = scanner.peek() else { throw JSONSyntaxError.unexpectedEnd }
                    scanner.index += 1
                    if c == 0x5D { break }
                    if c != 0x2C { throw JSONSyntaxError.unexpectedByte(offset: scanner.index - 1) }
                } catch {
                    throw BodyError(description: "the body is a JSON array that is not valid JSON (element \(index)): \(error.explanation); send a valid array or one event per line (NDJSON)")
                }
            }
            scanner.skipWhitespace()
            if scanner.index != all.count {
                throw BodyError(description: "the body has text after its JSON array at byte \(scanner.index + 1); send one array or one event per line")
            }
            return
        }
        var index = 0
        while start < all.count {
            var end = start
            while end < all.count && all[end] != 0x0A { end += 1 }
            var stop = end
            if stop > start && all[stop - 1] == 0x0D { stop -= 1 }
            let line = UnsafeBufferPointer(rebasing: all[start..<stop])
            if line.contains(where: { $0 != 0x20 && $0 != 0x09 }) { take(line, index: index) }
            index += 1
            start = end + 1
        }
    }
    return batch
}

/// Inflates a gzip (or zlib) body, refusing one that grows past `limit` bytes.
public func inflateBody(_ compressed: [UInt8], limit: Int) throws -> [UInt8] {
    var z = z_stream()
    guard inflateInit2_(&z, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw BodyError(description: "cannot start decompressing the body")
    }
    defer { inflateEnd(&z) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var input = compressed
    let status: Int32 = input.withUnsafeMutableBufferPointer { inBuffer in
        z.next_in = inBuffer.baseAddress
        z.avail_in = UInt32(inBuffer.count)
        while true {
            let (code, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer -> (Int32, Int) in
                z.next_out = outBuffer.baseAddress
                z.avail_out = UInt32(outBuffer.count)
                let code = inflate(&z, Z_NO_FLUSH)
                return (code, outBuffer.count - Int(z.avail_out))
            }
            out.append(contentsOf: chunk[0..<produced])
            if out.count > limit { return -100 }
            if code == Z_STREAM_END { return Z_STREAM_END }
            if code != Z_OK { return code }
            if z.avail_in == 0 && produced == 0 { return Z_BUF_ERROR }
        }
    }
    if status == -100 { throw BodyTooLarge() }
    guard status == Z_STREAM_END else {
        throw BodyError(description: "the body is not valid gzip (zlib status \(status)); send it uncompressed or fix the Content-Encoding")
    }
    return out
}
