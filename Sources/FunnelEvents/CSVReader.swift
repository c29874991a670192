/// Reads CSV event files (DESIGN.md §2): a header of the event field names, one event per record.
///
/// Each record is rewritten as a JSON object and validated by the same code as JSON Lines, so both
/// formats follow one set of rules: an empty cell is an absent field; numeric and boolean fields take
/// their JSON form when the cell is a valid literal (otherwise the text, which fails as `wrong_type`);
/// `ts` is a number when the cell is one; `context.<key>` cells form the `context` object; `items`
/// holds a JSON array. Quoted cells may span lines (RFC 4180).
final class CSVChunker {
    let stream: ByteStream
    let file: Int
    let path: String
    let target: Int
    var buffer: [UInt8] = []
    var position = 0
    var eof = false
    var bomChecked = false
    var line = 1
    var header: [String]? = nil
    var headerFields: [Field?] = []

    init(stream: ByteStream, file: Int, path: String, target: Int = 4 << 20) {
        self.stream = stream
        self.file = file
        self.path = path
        self.target = target
    }

    func refill() throws(InputError) -> Bool {
        if position > 0 { buffer.removeFirst(position); position = 0 }
        if eof { return false }
        var gotAny = false  // whether this call read anything
        repeat {
            let old = buffer.count
            let step = 1 << 20
            buffer.append(contentsOf: repeatElement(0, count: step))
            let got = try readAppending(stream, into: &buffer, at: old)
            buffer.removeLast(step - got)
            if got == 0 { eof = true; break }
            gotAny = true
            // The first read may return only the bytes put back after sniffing: read on until the
            // byte-order mark can be judged.
        } while !bomChecked && buffer.count < 3
        if !bomChecked {
            bomChecked = true
            if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { buffer.removeFirst(3) }
        }
        _ = gotAny
        return position < buffer.count
    }

    /// One record: its cells, raw bytes (without the line break), first line number and whether it
    /// ended inside an open quote.
    func nextRecord() throws(InputError) -> (cells: [[UInt8]], raw: [UInt8], line: Int, unterminated: Bool)? {
        var cells: [[UInt8]] = []
        var cell: [UInt8] = []
        var raw: [UInt8] = []
        var inQuotes = false
        var quotedCell = false
        let startLine = line
        var sawAnything = false
        while true {
            if position >= buffer.count {
                if try !refill() {
                    if !sawAnything { return nil }
                    cells.append(cell)
                    return (cells, raw, startLine, inQuotes)
                }
            }
            let c = buffer[position]
            position += 1
            sawAnything = true
            if inQuotes {
                if c == 0x22 {
                    if position >= buffer.count { _ = try refill() }
                    if position < buffer.count && buffer[position] == 0x22 {
                        cell.append(0x22); raw.append(0x22); raw.append(0x22); position += 1
                        continue
                    }
                    inQuotes = false
                    raw.append(c)
                    continue
                }
                if c == 0x0A { line += 1 }
                cell.append(c); raw.append(c)
                continue
            }
            switch c {
            case 0x0D:
                // CRLF ends the record (also after a quoted cell); a lone CR is cell text.
                if position >= buffer.count { _ = try refill() }
                if position < buffer.count && buffer[position] == 0x0A { continue }
                cell.append(c); raw.append(c)
            case 0x0A:
                line += 1
                cells.append(cell)
                return (cells, raw, startLine, false)
            case 0x2C:
                cells.append(cell); cell = []; quotedCell = false; raw.append(c)
            case 0x22 where cell.isEmpty && !quotedCell:
                inQuotes = true; quotedCell = true; raw.append(c)
            default:
                cell.append(c); raw.append(c)
            }
        }
    }

    func next() throws(InputError) -> Chunk? {
        if header == nil {
            while true {
                guard let record = try nextRecord() else { return nil }
                if record.raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                header = record.cells.map { String(decoding: $0, as: UTF8.self).trimmingSpaces() }
                headerFields = header!.map { name in
                    var n = name
                    return n.withUTF8 { Field.match($0) }
                }
                break
            }
        }
        var out: [UInt8] = []
        var lines: [Int] = []
        var raws: [[UInt8]] = []
        while out.count < target, let record = try nextRecord() {
            if record.raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            lines.append(record.line)
            raws.append(record.raw)
            if record.unterminated {
                out.append(contentsOf: Array("\u{1}unterminated quoted cell".utf8))
            } else if record.cells.count > header!.count {
                out.append(contentsOf: Array("\u{1}row has \(record.cells.count) cells but the header has \(header!.count)".utf8))
            } else {
                appendJSON(record.cells, to: &out)
            }
            out.append(0x0A)
        }
        if lines.isEmpty { return nil }
        return Chunk(file: file, firstLine: lines[0], bytes: out, csvLines: lines, csvRaw: raws)
    }

    /// Writes the record as one JSON object.
    func appendJSON(_ cells: [[UInt8]], to out: inout [UInt8]) {
        out.append(0x7B)
        var first = true
        var context: [(String, [UInt8])] = []
        for (k, cell) in cells.enumerated() where !cell.isEmpty {
            let name = header![k]
            if name.hasPrefix("context.") {
                context.append((String(name.dropFirst(8)), cell))
                continue
            }
            if !first { out.append(0x2C) }
            first = false
            appendJSONString(Array(name.utf8), to: &out)
            out.append(0x3A)
            let literalOK: Bool
            switch headerFields[k].map(Schema.kind) {
            case .number?, .integer?, .timestamp?: literalOK = isJSONNumber(cell)
            case .bool?: literalOK = cell.elementsEqual("true".utf8) || cell.elementsEqual("false".utf8)
            case .array?: literalOK = isJSONValue(cell)
            default: literalOK = false
            }
            if literalOK { out.append(contentsOf: cell) } else { appendJSONString(cell, to: &out) }
        }
        if !context.isEmpty {
            if !first { out.append(0x2C) }
            out.append(contentsOf: Array("\"context\":{".utf8))
            for (k, (key, value)) in context.enumerated() {
                if k > 0 { out.append(0x2C) }
                appendJSONString(Array(key.utf8), to: &out)
                out.append(0x3A)
                appendJSONString(value, to: &out)
            }
            out.append(0x7D)
        }
        out.append(0x7D)
    }
}

func isJSONNumber(_ cell: [UInt8]) -> Bool {
    cell.withUnsafeBufferPointer { b in
        var s = JSONScanner(b)
        guard (try? s.scanNumber()) != nil else { return false }
        return s.index == b.count
    }
}

func isJSONValue(_ cell: [UInt8]) -> Bool {
    cell.withUnsafeBufferPointer { b in
        var s = JSONScanner(b)
        guard (try? s.scanValue()) != nil else { return false }
        s.skipWhitespace()
        return s.index == b.count
    }
}

/// Appends `bytes` as a JSON string literal (quotes and control characters escaped; other bytes,
/// including invalid UTF-8, are copied so that validation sees them).
func appendJSONString(_ bytes: [UInt8], to out: inout [UInt8]) {
    out.append(0x22)
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    for c in bytes {
        switch c {
        case 0x22: out.append(0x5C); out.append(0x22)
        case 0x5C: out.append(0x5C); out.append(0x5C)
        case 0x0A: out.append(0x5C); out.append(0x6E)
        case 0x0D: out.append(0x5C); out.append(0x72)
        case 0x09: out.append(0x5C); out.append(0x74)
        case 0..<0x20:
            out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
        default: out.append(c)
        }
    }
    out.append(0x22)
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
