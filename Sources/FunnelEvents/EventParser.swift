import Foundation
import FunnelBase
/// The five event types of the contract (DESIGN.md §2).
public enum EventType: UInt8, Sendable, CaseIterable {
    case exposure, impression, click, addToCart, purchase

    /// The name used in event files.
    public var name: String {
        switch self {
        case .exposure: return "exposure"
        case .impression: return "impression"
        case .click: return "click"
        case .addToCart: return "add_to_cart"
        case .purchase: return "purchase"
        }
    }
}

/// Why a line was quarantined; the raw values are the report's keys (DESIGN.md §2).
public enum QuarantineReason: String, Sendable, CaseIterable, Codable {
    case invalidJSON = "invalid_json"
    case missingField = "missing_field"
    case wrongType = "wrong_type"
    case unknownType = "unknown_type"
    case invalidTimestamp = "invalid_timestamp"
    case invalidValue = "invalid_value"
}

/// A rejected line's reason, the field it names (if any) and a message saying what to fix.
public struct Rejection: Error, Sendable, Equatable {
    public var reason: QuarantineReason
    public var field: String?
    public var message: String

    public init(_ reason: QuarantineReason, field: String?, _ message: String) {
        self.reason = reason
        self.field = field
        self.message = message
    }
}

/// A string copied into a parse arena, with its hash.
public struct StringRef: Sendable, Equatable {
    public var offset: Int32
    public var length: Int32
    public var hash: UInt64

    public static let none = StringRef(offset: -1, length: 0, hash: 0)
    @inlinable public var isNone: Bool { offset < 0 }
}

/// One validated event whose strings live in a `ParseArena`.
public struct ParsedEvent: Sendable {
    public var type: EventType = .exposure
    public var ts: Int64 = 0
    public var eventID: StringRef = .none
    public var user: StringRef = .none
    public var experiment: StringRef = .none
    public var variant: StringRef = .none
    public var item: StringRef = .none
    public var surface: StringRef = .none
    public var impressionID: StringRef = .none
    public var order: StringRef = .none
    public var position: Int32 = 0
    public var quantity: Int32 = 1
    public var bot: Bool = false
    /// Both viewability fields when both are present (the contract judges only then).
    public var viewable: (fraction: Double, ms: Double)? = nil
    /// Impressions: the logging policy's propensity and the request id, when present.
    public var propensity: Double? = nil
    public var request: StringRef = .none
    /// Range into `ParseArena.contextPairs` (exposures and impressions).
    public var contextStart: Int32 = 0
    public var contextCount: Int32 = 0
    /// Range into `ParseArena.lines` (purchases only).
    public var linesStart: Int32 = 0
    public var linesCount: Int32 = 0

    public init() {}
}

/// A purchase item line with arena strings.
public struct ParsedLine: Sendable {
    public var item: StringRef
    public var quantity: Int32
    public var price: Double
}

/// Storage for the strings, contexts and purchase lines of a batch of parsed events.
///
/// The arena may start with the text the events were read from (`init(source:)`): its bytes are
/// shared, not copied, and a string without escapes is then referred to where it stands in that
/// text; only strings that must be decoded are appended after it.
public struct ParseArena: Sendable {
    public var bytes: [UInt8] = []
    public var contextPairs: [(key: StringRef, value: StringRef)] = []
    public var lines: [ParsedLine] = []
    /// Length of the shared source text at the start of `bytes` (0: none).
    public private(set) var sourceCount = 0

    public init() { bytes.reserveCapacity(1 << 16) }

    /// An arena whose first bytes are `source` (shared storage), for texts under 2 GiB.
    public init(source: [UInt8]) {
        precondition(source.count <= Int(Int32.max), "a shared arena source is under 2 GiB")
        bytes = source
        sourceCount = source.count
    }

    /// The bytes of a string in this arena.
    @inlinable
    public func withBytes<R>(_ ref: StringRef, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        bytes.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[Int(ref.offset)..<Int(ref.offset + ref.length)]))
        }
    }

    /// Decoded Swift string (for messages and tests).
    public func string(_ ref: StringRef) -> String? {
        if ref.isNone { return nil }
        return withBytes(ref) { String(decoding: $0, as: UTF8.self) }
    }

    /// The string of `slot` in `line`: where it stands when the line lies in the shared source
    /// (`lineOffset`, its offset there) and holds no escapes; otherwise decoded and appended.
    mutating func append(_ line: UnsafeBufferPointer<UInt8>, _ slot: JSONSlot, lineOffset: Int?) -> StringRef {
        if let lineOffset, !slot.escaped { return sourceString(at: lineOffset + slot.start, count: slot.end - slot.start) }
        let offset = bytes.count
        appendDecodedJSONString(line, slot.start, slot.end, escaped: slot.escaped, to: &bytes)
        let length = bytes.count - offset
        let hash = bytes.withUnsafeBufferPointer { all in
            hashBytes(UnsafeBufferPointer(rebasing: all[offset..<offset + length]))
        }
        return StringRef(offset: Int32(offset), length: Int32(length), hash: hash)
    }

    /// A string of the shared source text, `count` bytes from `offset`, with its hash.
    @inline(__always)
    func sourceString(at offset: Int, count: Int) -> StringRef {
        let hash = bytes.withUnsafeBufferPointer { all in hashBytes(UnsafeBufferPointer(rebasing: all[offset..<offset + count])) }
        return StringRef(offset: Int32(offset), length: Int32(count), hash: hash)
    }

    /// Forget every event's strings, contexts and lines (keeps capacity and the shared source).
    public mutating func removeAll() {
        if bytes.count > sourceCount { bytes.removeSubrange(sourceCount...) }
        if !contextPairs.isEmpty { contextPairs.removeAll(keepingCapacity: true) }
        if !lines.isEmpty { lines.removeAll(keepingCapacity: true) }
    }
}

/// A fast 64-bit hash of a byte string (multiply–xorshift over 8-byte words).
@inline(__always)
public func hashBytes(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(b.count) &* 0x9E37_79B9_7F4A_7C15)
    var i = 0
    let n = b.count
    guard let base = b.baseAddress else { return h }
    while i + 8 <= n {
        let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
        h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        i += 8
    }
    if i < n {
        var w: UInt64 = 0
        var shift: UInt64 = 0
        while i < n { w |= UInt64(base[i]) << shift; shift += 8; i += 1 }
        h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
    }
    h ^= h >> 32
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 31
    return h
}

/// The top-level keys the event schema knows, in the order of DESIGN.md §2's table (the order
/// in which checks name the first failing field).
public enum Field: Int, CaseIterable, Sendable {
    case type, eventID, ts, userID, experiment, variant, itemID, position, surface, requestID, propensity,
         price, viewableFraction, viewableMs, context, bot, impressionID, quantity, orderID, items

    public var key: String {
        switch self {
        case .type: return "type"
        case .eventID: return "event_id"
        case .ts: return "ts"
        case .userID: return "user_id"
        case .experiment: return "experiment"
        case .variant: return "variant"
        case .itemID: return "item_id"
        case .position: return "position"
        case .surface: return "surface"
        case .requestID: return "request_id"
        case .propensity: return "propensity"
        case .price: return "price"
        case .viewableFraction: return "viewable_fraction"
        case .viewableMs: return "viewable_ms"
        case .context: return "context"
        case .bot: return "bot"
        case .impressionID: return "impression_id"
        case .quantity: return "quantity"
        case .orderID: return "order_id"
        case .items: return "items"
        }
    }

    /// The field whose key is `bytes`, if any: by length and first byte, then one comparison
    /// (no table lookups, no allocation: it runs for every key of every line).
    @inline(__always)
    static func match(_ b: UnsafeBufferPointer<UInt8>) -> Field? {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            s.utf8CodeUnitCount == b.count && memcmp(b.baseAddress!, s.utf8Start, b.count) == 0
        }
        guard let first = b.first else { return nil }
        switch (b.count, first) {
        case (2, UInt8(ascii: "t")): return eq("ts") ? .ts : nil
        case (3, UInt8(ascii: "b")): return eq("bot") ? .bot : nil
        case (4, UInt8(ascii: "t")): return eq("type") ? .type : nil
        case (5, UInt8(ascii: "p")): return eq("price") ? .price : nil
        case (5, UInt8(ascii: "i")): return eq("items") ? .items : nil
        case (7, UInt8(ascii: "u")): return eq("user_id") ? .userID : nil
        case (7, UInt8(ascii: "i")): return eq("item_id") ? .itemID : nil
        case (7, UInt8(ascii: "v")): return eq("variant") ? .variant : nil
        case (7, UInt8(ascii: "s")): return eq("surface") ? .surface : nil
        case (7, UInt8(ascii: "c")): return eq("context") ? .context : nil
        case (8, UInt8(ascii: "e")): return eq("event_id") ? .eventID : nil
        case (8, UInt8(ascii: "p")): return eq("position") ? .position : nil
        case (8, UInt8(ascii: "q")): return eq("quantity") ? .quantity : nil
        case (8, UInt8(ascii: "o")): return eq("order_id") ? .orderID : nil
        case (10, UInt8(ascii: "e")): return eq("experiment") ? .experiment : nil
        case (10, UInt8(ascii: "r")): return eq("request_id") ? .requestID : nil
        case (10, UInt8(ascii: "p")): return eq("propensity") ? .propensity : nil
        case (11, UInt8(ascii: "v")): return eq("viewable_ms") ? .viewableMs : nil
        case (13, UInt8(ascii: "i")): return eq("impression_id") ? .impressionID : nil
        case (17, UInt8(ascii: "v")): return eq("viewable_fraction") ? .viewableFraction : nil
        default: return nil
        }
    }
}

/// Which fields each event type validates, and which it requires.
enum Schema {
    /// `validated` and `required` of each type, computed once.
    static let validatedByType: [[Field]] = EventType.allCases.map(validatedFields)
    static let requiredByType: [[Field]] = EventType.allCases.map(requiredFields)

    @inline(__always) static func validated(_ t: EventType) -> [Field] { validatedByType[Int(t.rawValue)] }
    @inline(__always) static func required(_ t: EventType) -> [Field] { requiredByType[Int(t.rawValue)] }

    static func validatedFields(_ t: EventType) -> [Field] {
        switch t {
        case .exposure: return [.eventID, .ts, .userID, .experiment, .variant, .context, .bot]
        case .impression:
            return [.eventID, .ts, .userID, .experiment, .variant, .itemID, .position, .surface, .requestID,
                    .propensity, .price, .viewableFraction, .viewableMs, .context, .bot]
        case .click: return [.eventID, .ts, .userID, .itemID, .bot, .impressionID]
        case .addToCart: return [.eventID, .ts, .userID, .itemID, .bot, .impressionID, .quantity]
        case .purchase: return [.eventID, .ts, .userID, .bot, .orderID, .items]
        }
    }

    static func requiredFields(_ t: EventType) -> [Field] {
        switch t {
        case .exposure: return [.eventID, .ts, .userID, .experiment, .variant]
        case .impression: return [.eventID, .ts, .userID, .itemID, .position]
        case .click: return [.eventID, .ts, .userID, .impressionID]
        case .addToCart: return [.eventID, .ts, .userID, .itemID]
        case .purchase: return [.eventID, .ts, .userID, .orderID, .items]
        }
    }

    enum Kind { case string, number, integer, bool, object, array, timestamp }

    static func kind(_ f: Field) -> Kind {
        switch f {
        case .type, .eventID, .userID, .experiment, .variant, .itemID, .surface, .requestID, .impressionID, .orderID:
            return .string
        case .ts: return .timestamp
        case .position, .quantity: return .integer
        case .propensity, .price, .viewableFraction, .viewableMs: return .number
        case .context: return .object
        case .bot: return .bool
        case .items: return .array
        }
    }
}
