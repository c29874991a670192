import Foundation
import FunnelBase

/// Lines longer than this are quarantined as `invalid_json` without being parsed.
public let maxLineBytes = 1 << 20

/// Parses and validates single event lines (DESIGN.md §2 and §7 "Validation"), appending
/// accepted events and their strings to an arena.
///
/// Checks run in the contract's order: `invalid_json` → `type` (`missing_field`, `wrong_type`,
/// `unknown_type`) → required fields (`missing_field`) → JSON types (`wrong_type`) → `ts`
/// (`invalid_timestamp`) → ranges (`invalid_value`). Within a stage, fields are checked in the
/// order of the contract's field table, so the first failing field is named.
public struct EventLineParser: Sendable {
    public var arena = ParseArena()
    var slots = [JSONSlot](repeating: JSONSlot(), count: Field.allCases.count)
    /// Where the line being parsed starts in the arena's shared source, if it lies there.
    public var lineOffset: Int? = nil

    public init() {}

    /// A parser whose arena shares `source`, the text its lines are cut from (see `ParseArena`).
    public init(source: [UInt8]) { arena = ParseArena(source: source) }

    /// Validates one line (without its newline). On success returns the event; its strings are in `arena`.
    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<ParsedEvent, Rejection> {
        var e = ParsedEvent()
        if let r = parse(line, into: &e) { return .failure(r) }
        return .success(e)
    }

    /// Validates one line (without its newline) into `e` (strings in `arena`); nil when accepted,
    /// else why not (`e` is then unspecified). The form the readers call: no event is copied.
    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into e: inout ParsedEvent) -> Rejection? {
        if line.count > maxLineBytes {
            return (Rejection(.invalidJSON, field: nil,
                "line is \(line.count) bytes, over the \(maxLineBytes)-byte limit for one event; split or drop it"))
        }
        guard isValidUTF8(line) else {
            return (Rejection(.invalidJSON, field: nil, "line is not valid UTF-8; re-encode the file as UTF-8"))
        }
        for k in 0..<slots.count { slots[k] = JSONSlot() }
        do throws(JSONSyntaxError) {
            var scanner = JSONScanner(line)
            scanner.skipWhitespace()
            if scanner.peek() != 0x7B {
                // Valid JSON that is not an object gets its own message.
                var probe = JSONScanner(line)
                _ = try probe.scanValue()
                probe.skipWhitespace()
                if probe.index == line.count {
                    return (Rejection(.invalidJSON, field: nil, "line is JSON but not an object; each line must be one event object"))
                }
                throw JSONSyntaxError.unexpectedByte(offset: probe.index)
            }
            try scanner.forEachMember { ks, ke, kesc, value throws(JSONSyntaxError) in
                let field: Field?
                if kesc {
                    var key: [UInt8] = []
                    appendDecodedJSONString(line, ks, ke, escaped: true, to: &key)
                    field = key.withUnsafeBufferPointer { Field.match($0) }
                } else {
                    field = Field.match(UnsafeBufferPointer(rebasing: line[ks..<ke]))
                }
                if let field { slots[field.rawValue] = value }
            }
            scanner.skipWhitespace()
            if scanner.index != line.count { throw JSONSyntaxError.unexpectedByte(offset: scanner.index) }
        } catch {
            return (Rejection(.invalidJSON, field: nil, "not valid JSON: \(error.explanation)"))
        }
        return validate(line, into: &e)
    }

    func slot(_ f: Field) -> JSONSlot { slots[f.rawValue] }

    mutating func validate(_ line: UnsafeBufferPointer<UInt8>, into e: inout ParsedEvent) -> Rejection? {
        // 1. type
        let typeSlot = slot(.type)
        if typeSlot.isMissing { return (Rejection(.missingField, field: "type", "field 'type' is missing; set it to exposure, impression, click, add_to_cart or purchase")) }
        guard typeSlot.kind == .string else { return (Rejection(.wrongType, field: "type", "field 'type' must be a string")) }
        let typeBytes = UnsafeBufferPointer(rebasing: line[typeSlot.start..<typeSlot.end])
        guard !typeSlot.escaped, let type = EventLineParser.eventType(typeBytes) else {
            var decoded: [UInt8] = []
            appendDecodedJSONString(line, typeSlot.start, typeSlot.end, escaped: typeSlot.escaped, to: &decoded)
            if let t = decoded.withUnsafeBufferPointer({ EventLineParser.eventType($0) }) {
                return validate(line, type: t, into: &e)
            }
            let shown = String(decoding: decoded.prefix(40), as: UTF8.self)
            return (Rejection(.unknownType, field: "type", "unknown event type '\(shown)'; expected exposure, impression, click, add_to_cart or purchase"))
        }
        return validate(line, type: type, into: &e)
    }

    static func eventType(_ b: UnsafeBufferPointer<UInt8>) -> EventType? {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            s.utf8CodeUnitCount == b.count && memcmp(b.baseAddress!, s.utf8Start, b.count) == 0
        }
        switch b.count {
        case 5: return eq("click") ? .click : nil
        case 8: return eq("exposure") ? .exposure : (eq("purchase") ? .purchase : nil)
        case 10: return eq("impression") ? .impression : nil
        case 11: return eq("add_to_cart") ? .addToCart : nil
        default: return nil
        }
    }

    mutating func validate(_ line: UnsafeBufferPointer<UInt8>, type: EventType, into e: inout ParsedEvent) -> Rejection? {
        let fields = Schema.validated(type)
        // 2. required fields (and, for purchases, the item lines' own required keys)
        for f in Schema.required(type) where slot(f).isMissing {
            return (Rejection(.missingField, field: f.key, "\(type.name) event needs field '\(f.key)'; add it or fix the producer"))
        }
        if type == .purchase, slot(.items).kind == .array {
            if let r = checkItemsRequired(line) { return (r) }
        }
        // 3. JSON types
        for f in fields {
            let s = slot(f)
            if s.isMissing { continue }
            let ok: Bool
            switch Schema.kind(f) {
            case .string: ok = s.kind == .string
            case .number: ok = s.kind == .number
            case .integer: ok = s.kind == .number && (s.number == s.number.rounded(.towardZero) || s.number.isInfinite)
            case .bool: ok = s.kind == .bool
            case .object: ok = s.kind == .object
            case .array: ok = s.kind == .array
            case .timestamp: ok = s.kind == .string || s.kind == .number
            }
            if !ok {
                return (Rejection(.wrongType, field: f.key, "field '\(f.key)' must be \(EventLineParser.describe(Schema.kind(f)))"))
            }
            if f == .context, let r = checkContextTypes(line) { return (r) }
            if f == .items, let r = checkItemsTypes(line) { return (r) }
        }
        // 4. timestamp
        let tsSlot = slot(.ts)
        let ts: Int64?
        if tsSlot.kind == .number {
            ts = Timestamp.millis(fromNumber: tsSlot.number)
        } else if tsSlot.escaped {
            var decoded: [UInt8] = []
            appendDecodedJSONString(line, tsSlot.start, tsSlot.end, escaped: true, to: &decoded)
            ts = decoded.withUnsafeBufferPointer { Timestamp.millis(fromRFC3339: $0) }
        } else {
            ts = Timestamp.millis(fromRFC3339: UnsafeBufferPointer(rebasing: line[tsSlot.start..<tsSlot.end]))
        }
        guard let ts else {
            return (Rejection(.invalidTimestamp, field: "ts", "field 'ts' must be RFC 3339 with an offset (2026-03-01T12:00:00.123Z) or integer epoch milliseconds"))
        }
        // 5. values
        for f in fields {
            let s = slot(f)
            if s.isMissing { continue }
            if let message = EventLineParser.rangeProblem(f, s) {
                return (Rejection(.invalidValue, field: f.key, message))
            }
        }
        if type == .purchase, let r = checkItemsValues(line) { return (r) }

        // Accepted: copy what counting needs into the arena.
        e = ParsedEvent()
        e.type = type
        e.ts = ts
        e.eventID = arena.append(line, slot(.eventID), lineOffset: lineOffset)
        e.user = arena.append(line, slot(.userID), lineOffset: lineOffset)
        e.bot = slot(.bot).kind == .bool && slot(.bot).bool
        switch type {
        case .exposure:
            e.experiment = arena.append(line, slot(.experiment), lineOffset: lineOffset)
            e.variant = arena.append(line, slot(.variant), lineOffset: lineOffset)
            if slot(.context).kind == .object { appendContext(line, &e) }
        case .impression:
            if slot(.experiment).kind == .string { e.experiment = arena.append(line, slot(.experiment), lineOffset: lineOffset) }
            if slot(.variant).kind == .string { e.variant = arena.append(line, slot(.variant), lineOffset: lineOffset) }
            e.item = arena.append(line, slot(.itemID), lineOffset: lineOffset)
            e.position = Int32(slot(.position).number)
            if slot(.surface).kind == .string { e.surface = arena.append(line, slot(.surface), lineOffset: lineOffset) }
            if slot(.context).kind == .object { appendContext(line, &e) }
            let vf = slot(.viewableFraction), vm = slot(.viewableMs)
            if vf.kind == .number && vm.kind == .number { e.viewable = (vf.number, vm.number) }
            if slot(.propensity).kind == .number {
                e.propensity = slot(.propensity).number
                if slot(.requestID).kind == .string { e.request = arena.append(line, slot(.requestID), lineOffset: lineOffset) }
            }
        case .click:
            e.impressionID = arena.append(line, slot(.impressionID), lineOffset: lineOffset)
        case .addToCart:
            e.item = arena.append(line, slot(.itemID), lineOffset: lineOffset)
            if slot(.impressionID).kind == .string { e.impressionID = arena.append(line, slot(.impressionID), lineOffset: lineOffset) }
            if slot(.quantity).kind == .number { e.quantity = Int32(slot(.quantity).number) }
        case .purchase:
            e.order = arena.append(line, slot(.orderID), lineOffset: lineOffset)
            appendLines(line, &e)
        }
        return nil
    }

    static func describe(_ k: Schema.Kind) -> String {
        switch k {
        case .string: return "a string"
        case .number: return "a number"
        case .integer: return "an integer (a number with no fractional part)"
        case .bool: return "true or false"
        case .object: return "an object of string values"
        case .array: return "an array"
        case .timestamp: return "an RFC 3339 string or epoch milliseconds"
        }
    }

    static let int32Max = Double(Int32.max)

    static func rangeProblem(_ f: Field, _ s: JSONSlot) -> String? {
        switch f {
        case .eventID, .userID:
            return s.start == s.end ? "field '\(f.key)' must not be empty" : nil
        case .position:
            return s.number >= 1 && s.number <= int32Max ? nil : "field 'position' must be an integer from 1 (top) to \(Int32.max)"
        case .quantity:
            return s.number >= 1 && s.number <= int32Max ? nil : "field 'quantity' must be an integer from 1 to \(Int32.max)"
        case .propensity:
            return s.number > 0 && s.number <= 1 ? nil : "field 'propensity' must be in (0, 1]"
        case .price:
            return s.number >= 0 && s.number.isFinite ? nil : "field 'price' must be a finite number ≥ 0"
        case .viewableFraction:
            return s.number >= 0 && s.number <= 1 ? nil : "field 'viewable_fraction' must be in [0, 1]"
        case .viewableMs:
            return s.number >= 0 && s.number.isFinite ? nil : "field 'viewable_ms' must be a finite number ≥ 0"
        default:
            return nil
        }
    }

    // MARK: nested values

    func checkContextTypes(_ line: UnsafeBufferPointer<UInt8>) -> Rejection? {
        var scanner = JSONScanner(line, from: slot(.context).start)
        var bad: Rejection?
        try? scanner.forEachMember { ks, ke, kesc, value throws(JSONSyntaxError) in
            if bad == nil && value.kind != .string {
                var key: [UInt8] = []
                appendDecodedJSONString(line, ks, ke, escaped: kesc, to: &key)
                let name = "context." + String(decoding: key, as: UTF8.self)
                bad = Rejection(.wrongType, field: name, "field '\(name)' must be a string (context is an object of string values)")
            }
        }
        return bad
    }

    mutating func appendContext(_ line: UnsafeBufferPointer<UInt8>, _ e: inout ParsedEvent) {
        var scanner = JSONScanner(line, from: slot(.context).start)
        e.contextStart = Int32(arena.contextPairs.count)
        var pairs: [(JSONSlot, JSONSlot)] = []
        try? scanner.forEachMember { ks, ke, kesc, value throws(JSONSyntaxError) in
            var key = JSONSlot()
            key.kind = .string; key.start = ks; key.end = ke; key.escaped = kesc
            pairs.append((key, value))
        }
        // A repeated key keeps its last value, as for top-level keys.
        var kept: [(StringRef, StringRef)] = []
        for (k, v) in pairs {
            let kr = arena.append(line, k, lineOffset: lineOffset)
            let vr = arena.append(line, v, lineOffset: lineOffset)
            if let idx = kept.firstIndex(where: { $0.0.hash == kr.hash && arena.equal($0.0, kr) }) {
                kept[idx].1 = vr
            } else {
                kept.append((kr, vr))
            }
        }
        for (k, v) in kept { arena.contextPairs.append((k, v)) }
        e.contextCount = Int32(kept.count)
    }

    /// Per element of `items`: its object slots (item_id, quantity, price), or nil when not an object.
    func itemLines(_ line: UnsafeBufferPointer<UInt8>) -> [(item: JSONSlot, quantity: JSONSlot, price: JSONSlot)?] {
        var result: [(item: JSONSlot, quantity: JSONSlot, price: JSONSlot)?] = []
        var scanner = JSONScanner(line, from: slot(.items).start)
        try? scanner.forEachElement { element throws(JSONSyntaxError) in
            guard element.kind == .object else { result.append(nil); return }
            var item = JSONSlot(), quantity = JSONSlot(), price = JSONSlot()
            var inner = JSONScanner(line, from: element.start)
            try inner.forEachMember { ks, ke, kesc, value throws(JSONSyntaxError) in
                var key: [UInt8] = []
                appendDecodedJSONString(line, ks, ke, escaped: kesc, to: &key)
                if key.elementsEqual("item_id".utf8) { item = value }
                else if key.elementsEqual("quantity".utf8) { quantity = value }
                else if key.elementsEqual("price".utf8) { price = value }
            }
            result.append((item, quantity, price))
        }
        return result
    }

    func checkItemsRequired(_ line: UnsafeBufferPointer<UInt8>) -> Rejection? {
        for (k, entry) in itemLines(line).enumerated() {
            guard let entry else { continue }
            if entry.item.isMissing { return Rejection(.missingField, field: "items[\(k)].item_id", "purchase item line \(k) needs 'item_id'") }
            if entry.price.isMissing { return Rejection(.missingField, field: "items[\(k)].price", "purchase item line \(k) needs 'price'") }
        }
        return nil
    }

    func checkItemsTypes(_ line: UnsafeBufferPointer<UInt8>) -> Rejection? {
        for (k, entry) in itemLines(line).enumerated() {
            guard let entry else { return Rejection(.wrongType, field: "items[\(k)]", "purchase item line \(k) must be an object {item_id, quantity, price}") }
            if entry.item.kind != .string { return Rejection(.wrongType, field: "items[\(k)].item_id", "items[\(k)].item_id must be a string") }
            let q = entry.quantity
            if !q.isMissing && !(q.kind == .number && (q.number == q.number.rounded(.towardZero) || q.number.isInfinite)) {
                return Rejection(.wrongType, field: "items[\(k)].quantity", "items[\(k)].quantity must be an integer")
            }
            if entry.price.kind != .number { return Rejection(.wrongType, field: "items[\(k)].price", "items[\(k)].price must be a number") }
        }
        return nil
    }

    func checkItemsValues(_ line: UnsafeBufferPointer<UInt8>) -> Rejection? {
        let entries = itemLines(line)
        if entries.isEmpty { return Rejection(.invalidValue, field: "items", "purchase 'items' must not be empty") }
        for (k, entry) in entries.enumerated() {
            guard let entry else { continue }
            if entry.quantity.kind == .number && !(entry.quantity.number >= 1 && entry.quantity.number <= EventLineParser.int32Max) {
                return Rejection(.invalidValue, field: "items[\(k)].quantity", "items[\(k)].quantity must be an integer from 1 to \(Int32.max)")
            }
            if !(entry.price.number >= 0 && entry.price.number.isFinite) {
                return Rejection(.invalidValue, field: "items[\(k)].price", "items[\(k)].price must be a finite number ≥ 0")
            }
        }
        return nil
    }

    mutating func appendLines(_ line: UnsafeBufferPointer<UInt8>, _ e: inout ParsedEvent) {
        e.linesStart = Int32(arena.lines.count)
        for entry in itemLines(line) {
            guard let entry else { continue }
            let item = arena.append(line, entry.item, lineOffset: lineOffset)
            let quantity = entry.quantity.kind == .number ? Int32(entry.quantity.number) : 1
            arena.lines.append(ParsedLine(item: item, quantity: quantity, price: entry.price.number))
        }
        e.linesCount = Int32(arena.lines.count) - e.linesStart
    }
}

extension ParseArena {
    /// Byte equality of two strings of this arena.
    func equal(_ a: StringRef, _ b: StringRef) -> Bool {
        guard a.length == b.length else { return false }
        return bytes.withUnsafeBufferPointer { all in
            memcmp(all.baseAddress! + Int(a.offset), all.baseAddress! + Int(b.offset), Int(a.length)) == 0
        }
    }
}
