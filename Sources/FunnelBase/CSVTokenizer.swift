/// Funnel's one CSV tokenizer (RFC 4180), shared by every reader of comma-separated text: event
/// files, the click models' tables, logged bandit feedback and policies, and item cohorts.
///
/// - A record ends at LF or CRLF outside quotes. A lone CR inside an unquoted cell is cell text;
///   the CR of a CRLF is never part of a cell.
/// - A cell that starts with `"` is quoted: it runs to the next `"` that is not doubled and may hold
///   separators, doubled quotes (one quote in the value) and line breaks. After its closing quote
///   comes a separator or the end of the record; anything else refuses the record
///   (`textAfterClosingQuote`), and reading resumes after the next line feed.
/// - A quote inside an unquoted cell is text (`ab"c` is the three characters and a quote).
/// - A quoted cell still open at the end of the input refuses the record (`unterminatedQuote`).
/// - A blank line is a record of one empty unquoted cell; readers skip it (`isBlank`).
///
/// The tokenizer works on bytes already in memory and reports `incomplete` when the record may
/// continue past the bytes it was given, so a streaming reader appends more input and scans again.
public struct CSVTokenizer: Sendable {
    /// The cell separator (`,`; a tab for tab-separated layouts).
    public let separator: UInt8
    /// Whether `"` starts a quoted cell (tab-separated layouts such as Criteo's have no quoting).
    public let quoting: Bool

    public init(separator: UInt8 = 0x2C, quoting: Bool = true) {
        self.separator = separator
        self.quoting = quoting
    }

    /// Scans the record starting at `start` in `buf[..<limit]`; its cells go to `cells` (reused).
    /// `final`: no input follows `limit`. Nil when nothing is left (`start >= limit` and `final`).
    public func scan(_ buf: UnsafeBufferPointer<UInt8>, from start: Int, limit: Int, final: Bool,
                     into cells: inout [CSVCell]) -> CSVScan? {
        cells.removeAll(keepingCapacity: true)
        if start >= limit { return final ? nil : .incomplete }
        var i = start
        var lineFeeds = 0
        while true {
            if quoting && i < limit && buf[i] == 0x22 {
                var j = i + 1
                var escaped = false
                while true {
                    guard j < limit else {
                        if !final { return .incomplete }
                        return .refused(.unterminatedQuote(offset: i - start), next: limit, lineFeeds: lineFeeds)
                    }
                    let c = buf[j]
                    if c == 0x22 {
                        if j + 1 >= limit && !final { return .incomplete }
                        if j + 1 < limit && buf[j + 1] == 0x22 { escaped = true; j += 2; continue }
                        break
                    }
                    if c == 0x0A { lineFeeds += 1 }
                    j += 1
                }
                cells.append(CSVCell(range: (i + 1)..<j, quoted: true, escaped: escaped))
                let k = j + 1
                if k >= limit { return .record(next: limit, lineFeeds: lineFeeds) }
                let c = buf[k]
                if c == separator { i = k + 1; continue }
                if c == 0x0A { return .record(next: k + 1, lineFeeds: lineFeeds + 1) }
                if c == 0x0D {
                    if k + 1 >= limit {
                        if !final { return .incomplete }
                        return .record(next: limit, lineFeeds: lineFeeds)
                    }
                    if buf[k + 1] == 0x0A { return .record(next: k + 2, lineFeeds: lineFeeds + 1) }
                }
                // Text after the closing quote: the record is refused and reading resumes after the
                // next line feed.
                var m = k
                while m < limit && buf[m] != 0x0A { m += 1 }
                if m < limit { return .refused(.textAfterClosingQuote(offset: k - start), next: m + 1, lineFeeds: lineFeeds + 1) }
                if !final { return .incomplete }
                return .refused(.textAfterClosingQuote(offset: k - start), next: limit, lineFeeds: lineFeeds)
            }
            var j = i
            let separator = self.separator
            while j < limit {
                let c = buf[j]
                if c == separator || c == 0x0A { break }
                j += 1
            }
            if j < limit && buf[j] == separator {
                cells.append(CSVCell(range: i..<j, quoted: false, escaped: false))
                i = j + 1
                continue
            }
            if j >= limit && !final { return .incomplete }
            var stop = j
            if stop > i && buf[stop - 1] == 0x0D { stop -= 1 }
            cells.append(CSVCell(range: i..<stop, quoted: false, escaped: false))
            return j < limit ? .record(next: j + 1, lineFeeds: lineFeeds + 1) : .record(next: limit, lineFeeds: lineFeeds)
        }
    }

    /// Whether a record is blank: one unquoted cell of spaces, tabs and carriage returns only.
    public static func isBlank(_ buf: UnsafeBufferPointer<UInt8>, _ cells: [CSVCell]) -> Bool {
        guard cells.count == 1, !cells[0].quoted else { return false }
        for i in cells[0].range where buf[i] != 0x20 && buf[i] != 0x09 && buf[i] != 0x0D { return false }
        return true
    }

    /// The value of a cell: its bytes with each doubled quote made one.
    public static func value(_ buf: UnsafeBufferPointer<UInt8>, _ cell: CSVCell) -> [UInt8] {
        guard cell.escaped else { return Array(buf[cell.range]) }
        var out: [UInt8] = []
        out.reserveCapacity(cell.range.count)
        var i = cell.range.lowerBound
        while i < cell.range.upperBound {
            out.append(buf[i])
            i += buf[i] == 0x22 ? 2 : 1
        }
        return out
    }

    /// The value of a cell as text (invalid UTF-8 replaced).
    public static func string(_ buf: UnsafeBufferPointer<UInt8>, _ cell: CSVCell) -> String {
        cell.escaped ? String(decoding: value(buf, cell), as: UTF8.self) : String(decoding: buf[cell.range], as: UTF8.self)
    }

    /// Where the records of a whole comma-separated input may be cut into `parts` pieces for
    /// parallel parsing: line feeds outside quoted cells, near equal shares of `range`. A quote
    /// count is enough because quotes pair up inside every well-formed record; a malformed record
    /// only moves a cut, and the refusal is still reported by the part that scans it.
    public func cuts(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, parts: Int) -> [Int] {
        var out = [range.lowerBound]
        guard parts > 1, range.count > 0 else { return out + [range.upperBound] }
        var quotes = 0
        var i = range.lowerBound
        for k in 1..<parts {
            let target = range.lowerBound + range.count * k / parts
            if target <= i { continue }
            if quoting { while i < target { if buf[i] == 0x22 { quotes += 1 }; i += 1 } } else { i = target }
            while i < range.upperBound {
                let c = buf[i]
                i += 1
                if c == 0x22 && quoting { quotes += 1 } else if c == 0x0A && quotes & 1 == 0 { break }
            }
            if i < range.upperBound { out.append(i) } else { break }
        }
        out.append(range.upperBound)
        return out
    }
}

/// One cell of a record: its bytes in the scanned buffer (for a quoted cell, between the quotes).
public struct CSVCell: Sendable, Equatable {
    public var range: Range<Int>
    /// The cell was written in quotes (an empty quoted cell is still a cell).
    public var quoted: Bool
    /// The quoted cell holds doubled quotes: read it with `CSVTokenizer.value`.
    public var escaped: Bool

    public init(range: Range<Int>, quoted: Bool, escaped: Bool) {
        self.range = range
        self.quoted = quoted
        self.escaped = escaped
    }
}

/// What scanning one record found.
public enum CSVScan: Sendable, Equatable {
    /// A record; the next one starts at `next`. `lineFeeds`: line feeds consumed (its terminator
    /// and those inside quoted cells), so a reader keeps line numbers.
    case record(next: Int, lineFeeds: Int)
    /// A record that breaks RFC 4180; the next one starts at `next`.
    case refused(CSVDefect, next: Int, lineFeeds: Int)
    /// The record may continue past the bytes given: supply more and scan from the same start.
    case incomplete
}

/// Why a record is refused.
public enum CSVDefect: Sendable, Equatable {
    case textAfterClosingQuote(offset: Int)
    case unterminatedQuote(offset: Int)

    /// A sentence a user can act on.
    public var explanation: String {
        switch self {
        case .textAfterClosingQuote(let o):
            return "text after the closing quote of a cell at byte \(o + 1) of the record; quote the whole cell and double the quotes inside it"
        case .unterminatedQuote(let o):
            return "the quoted cell starting at byte \(o + 1) of the record is not closed; close it with a quote"
        }
    }
}

/// How a text input starts: the bytes of a UTF-8 byte-order mark to skip, or the reason it cannot be
/// read as UTF-8 text (UTF-16, with or without its byte-order mark).
public func utf8TextStart(_ buf: UnsafeBufferPointer<UInt8>, path: String) throws(InputError) -> Int {
    let n = buf.count
    if n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF { return 3 }
    let bom16 = n >= 2 && ((buf[0] == 0xFF && buf[1] == 0xFE) || (buf[0] == 0xFE && buf[1] == 0xFF))
    // Without a byte-order mark, UTF-16 text of ASCII characters has a zero byte in every pair.
    let bare16 = n >= 4 && ((buf[0] == 0 && buf[1] != 0 && buf[2] == 0 && buf[3] != 0) || (buf[0] != 0 && buf[1] == 0 && buf[2] != 0 && buf[3] == 0))
    if bom16 || bare16 {
        throw InputError(path: path, "the file is UTF-16 text; save it as UTF-8 (for example: iconv -f UTF-16 -t UTF-8 IN > OUT)")
    }
    return 0
}
