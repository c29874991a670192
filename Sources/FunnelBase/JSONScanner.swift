import Foundation

/// Why a line is not valid JSON (the reader turns every case into the `invalid_json` quarantine reason).
public enum JSONSyntaxError: Error, Equatable, Sendable {
    case unexpectedEnd
    case unexpectedByte(offset: Int)
    case invalidEscape(offset: Int)
    case controlCharacter(offset: Int)
    case invalidNumber(offset: Int)
    case nonFiniteLiteral(offset: Int)
    case tooDeep(offset: Int)

    /// A sentence a user can act on.
    public var explanation: String {
        switch self {
        case .unexpectedEnd: return "the line ends inside a JSON value (truncated line?)"
        case .unexpectedByte(let o): return "unexpected character at byte \(o + 1)"
        case .invalidEscape(let o): return "invalid escape sequence in a string at byte \(o + 1)"
        case .controlCharacter(let o): return "unescaped control character in a string at byte \(o + 1)"
        case .invalidNumber(let o): return "malformed number at byte \(o + 1)"
        case .nonFiniteLiteral(let o): return "NaN and Infinity are not JSON (byte \(o + 1))"
        case .tooDeep(let o): return "values nested more than \(JSONScanner.maxDepth) levels deep at byte \(o + 1)"
        }
    }
}

/// The JSON type of a scanned value.
public enum JSONKind: UInt8, Sendable {
    case absent, null, string, number, bool, object, array
}

/// A scanned value: its kind and its byte span in the line (for strings, inside the quotes).
public struct JSONSlot: Sendable {
    public var kind: JSONKind = .absent
    /// Start of the value (for a string: the first byte after the opening quote).
    public var start: Int = 0
    /// End of the value, exclusive (for a string: the closing quote).
    public var end: Int = 0
    /// Numeric value of a number (may be ±infinity for huge literals such as `1e400`).
    public var number: Double = 0
    /// For strings: whether the string holds escape sequences and must be decoded.
    public var escaped: Bool = false
    /// For booleans: the value.
    public var bool: Bool = false

    public init() {}

    /// Absent or JSON `null` (the contract treats both as absent).
    @inlinable public var isMissing: Bool { kind == .absent || kind == .null }
}

/// A strict RFC 8259 scanner over one line of bytes, which must already be valid UTF-8.
///
/// It validates the whole value (so junk nested anywhere is caught) but materialises nothing:
/// callers receive byte spans and decode only the strings they need.
public struct JSONScanner {
    /// Deepest nesting accepted; deeper input is rejected rather than risking the stack.
    public static let maxDepth = 128

    public let bytes: UnsafeBufferPointer<UInt8>
    public var index: Int

    public init(_ bytes: UnsafeBufferPointer<UInt8>, from index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    @inline(__always)
    public mutating func skipWhitespace() {
        while index < bytes.count {
            let c = bytes[index]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { index += 1 } else { return }
        }
    }

    @inline(__always)
    public func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    @inline(__always)
    public mutating func expect(_ byte: UInt8) throws(JSONSyntaxError) {
        guard index < bytes.count else { throw .unexpectedEnd }
        guard bytes[index] == byte else { throw .unexpectedByte(offset: index) }
        index += 1
    }

    /// Scans a string whose opening quote is at `index`; returns (start, end, escaped).
    @inline(__always)
    public mutating func scanString() throws(JSONSyntaxError) -> (Int, Int, Bool) {
        try expect(0x22)
        let start = index
        var escaped = false
        let n = bytes.count
        // Eight bytes at a time while none of them is a quote, a backslash or a control byte.
        if let base = bytes.baseAddress {
            while index + 8 <= n {
                let w = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                let quote = w ^ (ones &* 0x22), slash = w ^ (ones &* 0x5C)
                // A byte is zero in x iff (x − 1) & ~x has its high bit; below 0x20 likewise with x − 0x20.
                let special = ((quote &- ones) & ~quote) | ((slash &- ones) & ~slash) | ((w &- ones &* 0x20) & ~w)
                if special & highs != 0 { break }
                index += 8
            }
        }
        while index < n {
            let c = bytes[index]
            if c == 0x22 {
                let end = index
                index += 1
                return (start, end, escaped)
            }
            if c == 0x5C {
                escaped = true
                guard index + 1 < n else { throw .unexpectedEnd }
                let e = bytes[index + 1]
                switch e {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: index += 2
                case 0x75:
                    guard index + 6 <= n else { throw .unexpectedEnd }
                    for k in 2..<6 where hexValue(bytes[index + k]) == nil { throw .invalidEscape(offset: index) }
                    index += 6
                default: throw .invalidEscape(offset: index)
                }
                continue
            }
            if c < 0x20 { throw .controlCharacter(offset: index) }
            index += 1
        }
        throw .unexpectedEnd
    }

    /// Scans a number at `index`; returns its value (strtod-exact) and whether the literal had a
    /// fraction or exponent.
    public mutating func scanNumber() throws(JSONSyntaxError) -> Double {
        let start = index
        let n = bytes.count
        var negative = false
        if index < n && bytes[index] == 0x2D { negative = true; index += 1 }
        guard index < n else { throw .unexpectedEnd }
        if bytes[index] == 0x49 { throw .nonFiniteLiteral(offset: start) }  // -Infinity
        var intValue: Int64 = 0
        var digits = 0
        if bytes[index] == 0x30 {
            index += 1
            digits = 1
            if index < n, bytes[index] >= 0x30, bytes[index] <= 0x39 { throw .invalidNumber(offset: start) }
        } else if bytes[index] >= 0x31 && bytes[index] <= 0x39 {
            while index < n, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                if digits < 18 { intValue = intValue &* 10 &+ Int64(bytes[index] &- 0x30) }
                digits += 1
                index += 1
            }
        } else {
            throw .invalidNumber(offset: start)
        }
        var simple = digits <= 18
        // Clinger's fast path: at most 15 significant digits in all and no exponent, so the digits
        // and 10^fraction are exact doubles and one division rounds correctly (as strtod would).
        var fraction = 0
        if index < n && bytes[index] == 0x2E {
            simple = false
            index += 1
            let fracStart = index
            while index < n, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                if digits + fraction < 15 { intValue = intValue &* 10 &+ Int64(bytes[index] &- 0x30) }
                fraction += 1
                index += 1
            }
            if index == fracStart { throw .invalidNumber(offset: start) }
        }
        var exponent = false
        if index < n && (bytes[index] == 0x65 || bytes[index] == 0x45) {
            simple = false
            exponent = true
            index += 1
            if index < n && (bytes[index] == 0x2B || bytes[index] == 0x2D) { index += 1 }
            let expStart = index
            while index < n, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            if index == expStart { throw .invalidNumber(offset: start) }
        }
        if simple {
            let v = Double(intValue)
            return negative ? -v : v
        }
        if fraction > 0 && digits + fraction <= 15 && !exponent {
            let v = Double(intValue) / JSONScanner.powersOfTen[fraction]
            return negative ? -v : v
        }
        return JSONScanner.parseDouble(UnsafeBufferPointer(rebasing: bytes[start..<index]))
    }

    /// 10^0 … 10^15, exact doubles.
    static let powersOfTen: [Double] = (0...15).map { k in (0..<k).reduce(1.0) { acc, _ in acc * 10 } }

    /// Correctly rounded decimal-to-double conversion of a validated JSON number literal.
    static func parseDouble(_ literal: UnsafeBufferPointer<UInt8>) -> Double {
        let count = literal.count
        if count < 128 {
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buf in
                for k in 0..<count { buf[k] = CChar(bitPattern: literal[k]) }
                buf[count] = 0
                return strtod(buf.baseAddress!, nil)
            }
        }
        var copy = [CChar](repeating: 0, count: count + 1)
        for k in 0..<count { copy[k] = CChar(bitPattern: literal[k]) }
        return copy.withUnsafeBufferPointer { strtod($0.baseAddress!, nil) }
    }

    /// Scans any value at `index` into a slot (containers are validated and spanned).
    public mutating func scanValue(depth: Int = 0) throws(JSONSyntaxError) -> JSONSlot {
        skipWhitespace()
        guard index < bytes.count else { throw .unexpectedEnd }
        var slot = JSONSlot()
        let c = bytes[index]
        switch c {
        case 0x22:
            let (s, e, esc) = try scanString()
            slot.kind = .string; slot.start = s; slot.end = e; slot.escaped = esc
        case 0x7B, 0x5B:
            slot.start = index
            try skipContainer(depth: depth + 1)
            slot.kind = c == 0x7B ? .object : .array
            slot.end = index
        case 0x74:
            try literal("true"); slot.kind = .bool; slot.bool = true
        case 0x66:
            try literal("false"); slot.kind = .bool; slot.bool = false
        case 0x6E:
            try literal("null"); slot.kind = .null
        case 0x4E, 0x49:
            throw .nonFiniteLiteral(offset: index)
        default:
            slot.start = index
            slot.number = try scanNumber()
            slot.kind = .number
            slot.end = index
        }
        return slot
    }

    @inline(__always)
    mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .unexpectedEnd }
        let p = word.utf8Start
        for k in 0..<count where bytes[index + k] != p[k] { throw .unexpectedByte(offset: index + k) }
        index += count
    }

    /// Validates an object or array starting at `index`, leaving `index` after it.
    mutating func skipContainer(depth: Int) throws(JSONSyntaxError) {
        guard depth <= JSONScanner.maxDepth else { throw .tooDeep(offset: index) }
        let open = bytes[index]
        index += 1
        skipWhitespace()
        if open == 0x7B {
            if peek() == 0x7D { index += 1; return }
            while true {
                skipWhitespace()
                _ = try scanString()
                skipWhitespace()
                try expect(0x3A)
                _ = try scanValue(depth: depth)
                if try !nextElement(closing: 0x7D) { return }
            }
        } else {
            if peek() == 0x5D { index += 1; return }
            while true {
                _ = try scanValue(depth: depth)
                if try !nextElement(closing: 0x5D) { return }
            }
        }
    }

    /// After a container's element: true at a comma (another element follows), false at the
    /// container's closing bracket; anything else is an error.
    mutating func nextElement(closing: UInt8) throws(JSONSyntaxError) -> Bool {
        skipWhitespace()
        guard let c = peek() else { throw .unexpectedEnd }
        index += 1
        if c == 0x2C { return true }
        if c == closing { return false }
        throw .unexpectedByte(offset: index - 1)
    }

    /// Calls `body(keyStart, keyEnd, keyEscaped, value)` for each member of the object at `index`.
    public mutating func forEachMember(
        _ body: (Int, Int, Bool, JSONSlot) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        skipWhitespace()
        try expect(0x7B)
        skipWhitespace()
        if peek() == 0x7D { index += 1; return }
        while true {
            skipWhitespace()
            let (ks, ke, kesc) = try scanString()
            skipWhitespace()
            try expect(0x3A)
            let value = try scanValue(depth: 1)
            try body(ks, ke, kesc, value)
            if try !nextElement(closing: 0x7D) { return }
        }
    }

    /// Calls `body(element)` for each element of the array at `index`.
    public mutating func forEachElement(_ body: (JSONSlot) throws(JSONSyntaxError) -> Void) throws(JSONSyntaxError) {
        skipWhitespace()
        try expect(0x5B)
        skipWhitespace()
        if peek() == 0x5D { index += 1; return }
        while true {
            let value = try scanValue(depth: 1)
            try body(value)
            if try !nextElement(closing: 0x5D) { return }
        }
    }
}

@inline(__always)
func hexValue(_ c: UInt8) -> UInt32? {
    switch c {
    case 0x30...0x39: return UInt32(c - 0x30)
    case 0x41...0x46: return UInt32(c - 0x41 + 10)
    case 0x61...0x66: return UInt32(c - 0x61 + 10)
    default: return nil
    }
}

/// Decodes the JSON string body `bytes[start..<end]` (escapes resolved) and appends its UTF-8 to `out`.
/// Lone surrogate escapes become U+FFFD.
public func appendDecodedJSONString(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, escaped: Bool, to out: inout [UInt8]) {
    if !escaped {
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<end]))
        return
    }
    var i = start
    func appendScalar(_ v: UInt32, _ out: inout [UInt8]) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | (v >> 6))); out.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12))); out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18))); out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F))); out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
    func hex4(_ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | (hexValue(bytes[at + k]) ?? 0) }
        return v
    }
    while i < end {
        let c = bytes[i]
        if c != 0x5C { out.append(c); i += 1; continue }
        let e = bytes[i + 1]
        switch e {
        case 0x62: out.append(0x08); i += 2
        case 0x66: out.append(0x0C); i += 2
        case 0x6E: out.append(0x0A); i += 2
        case 0x72: out.append(0x0D); i += 2
        case 0x74: out.append(0x09); i += 2
        case 0x75:
            let u = hex4(i + 2)
            i += 6
            if u >= 0xD800 && u < 0xDC00 {
                if i + 6 <= end && bytes[i] == 0x5C && bytes[i + 1] == 0x75 {
                    let low = hex4(i + 2)
                    if low >= 0xDC00 && low < 0xE000 {
                        appendScalar(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00), &out)
                        i += 6
                        continue
                    }
                }
                appendScalar(0xFFFD, &out)
            } else if u >= 0xDC00 && u < 0xE000 {
                appendScalar(0xFFFD, &out)
            } else {
                appendScalar(u, &out)
            }
        default: out.append(e); i += 2
        }
    }
}

/// Whether `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
public func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    let n = bytes.count
    while i < n {
        // ASCII fast path, eight bytes at a time.
        while i + 8 <= n {
            let word = UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self)
            if word & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        guard i < n else { return true }
        let c = bytes[i]
        if c < 0x80 { i += 1; continue }
        var need = 0
        var minValue: UInt32 = 0
        var v: UInt32 = 0
        if c & 0xE0 == 0xC0 { need = 1; v = UInt32(c & 0x1F); minValue = 0x80 }
        else if c & 0xF0 == 0xE0 { need = 2; v = UInt32(c & 0x0F); minValue = 0x800 }
        else if c & 0xF8 == 0xF0 { need = 3; v = UInt32(c & 0x07); minValue = 0x10000 }
        else { return false }
        if i + need >= n { return false }
        for k in 1...need {
            let d = bytes[i + k]
            if d & 0xC0 != 0x80 { return false }
            v = v << 6 | UInt32(d & 0x3F)
        }
        if v < minValue || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000) { return false }
        i += need + 1
    }
    return true
}

extension JSONScanner {
    /// Moves past the value at `index` without validating it and returns where it ends, or nil
    /// when the text ends first: strings are spanned with `memchr` (a quote after an odd run of
    /// backslashes is escaped) and containers by counting brackets outside strings. For outlines of
    /// large documents whose parts a stricter decoder reads afterwards (the model file's megabytes
    /// of base64).
    public mutating func spanValue() -> Int? {
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case 0x22:
            guard let e = stringEnd(from: index) else { return nil }
            index = e + 1
        case 0x7B, 0x5B:
            var depth = 0, j = index
            while true {
                guard j < bytes.count else { return nil }
                switch bytes[j] {
                case 0x22:
                    guard let e = stringEnd(from: j) else { return nil }
                    j = e
                case 0x7B, 0x5B: depth += 1
                case 0x7D, 0x5D: depth -= 1
                default: break
                }
                j += 1
                if depth == 0 { break }
            }
            index = j
        default:
            while index < bytes.count {
                let c = bytes[index]
                if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 || c == 0x2C || c == 0x7D || c == 0x5D { break }
                index += 1
            }
        }
        return index
    }

    /// The index of the quote that closes the string opened at `start`, or nil.
    func stringEnd(from start: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        var j = start + 1
        while j < bytes.count {
            guard let hit = memchr(base + j, 0x22, bytes.count - j) else { return nil }
            let q = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            var k = q - 1, run = 0
            while k > start, bytes[k] == 0x5C { run += 1; k -= 1 }
            if run % 2 == 0 { return q }
            j = q + 1
        }
        return nil
    }
}
