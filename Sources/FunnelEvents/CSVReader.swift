import FunnelBase
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

    let tokenizer = CSVTokenizer()
    var cells: [CSVCell] = []

    /// Drops the bytes already consumed and reads more; false when the input has ended.
    func refill() throws(InputError) -> Bool {
        if position > 0 { buffer.removeFirst(position); position = 0 }
        if eof { return false }
        repeat {
            let old = buffer.count
            let step = 1 << 20
            buffer.append(contentsOf: repeatElement(0, count: step))
            let got = try readAppending(stream, into: &buffer, at: old)
            buffer.removeLast(step - got)
            if got == 0 { eof = true; break }
            // The first read may return only the bytes put back after sniffing: read on until the
            // start of the text can be judged.
        } while !bomChecked && buffer.count < 4
        if !bomChecked {
            bomChecked = true
            let skip = try buffer.withUnsafeBufferPointer { (b) throws(InputError) -> Int in try utf8TextStart(b, path: path) }
            buffer.removeFirst(skip)
        }
        return true
    }

    /// One record: its cell values, raw bytes (without the line break), first line number and, when
    /// the record breaks RFC 4180, why.
    func nextRecord() throws(InputError) -> (cells: [[UInt8]], raw: [UInt8], line: Int, defect: CSVDefect?)? {
        if !bomChecked { _ = try refill() }
        while true {
            let scan = buffer.withUnsafeBufferPointer { b in
                tokenizer.scan(b, from: position, limit: b.count, final: eof, into: &cells)
            }
            guard let scan else { return nil }
            let next: Int, lineFeeds: Int, defect: CSVDefect?
            switch scan {
            case .incomplete:
                _ = try refill()
                continue
            case .record(let n, let f): next = n; lineFeeds = f; defect = nil
            case .refused(let d, let n, let f): next = n; lineFeeds = f; defect = d
            }
            let record = buffer.withUnsafeBufferPointer { b in
                var stop = next
                if stop > position && b[stop - 1] == 0x0A { stop -= 1 }
                if stop > position && b[stop - 1] == 0x0D { stop -= 1 }
                return (cells: cells.map { CSVTokenizer.value(b, $0) }, raw: Array(b[position..<stop]),
                        blank: CSVTokenizer.isBlank(b, cells))
            }
            let startLine = line
            line += lineFeeds
            position = next
            if record.blank && defect == nil { continue }
            return (record.cells, record.raw, startLine, defect)
        }
    }

    /// The columns every event needs (DESIGN.md §2): a header without them is not a header.
    static let requiredColumns = ["event_id", "ts", "user_id", "type"]

    func next() throws(InputError) -> Chunk? {
        if header == nil {
            guard let record = try nextRecord() else { return nil }
            if let defect = record.defect {
                throw InputError(path: path, "line \(record.line): the header row is malformed CSV: \(defect.explanation)")
            }
            let names = record.cells.map { String(decoding: $0, as: UTF8.self).trimmingSpaces() }
            let missing = CSVChunker.requiredColumns.filter { !names.contains($0) }
            if !missing.isEmpty {
                throw InputError(path: path, "line \(record.line): the header lacks the required column\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")); the first row of a CSV event file names the columns, e.g. event_id,ts,user_id,type,item_id,position")
            }
            header = names
            headerFields = names.map { name in
                var n = name
                return n.withUTF8 { Field.match($0) }
            }
        }
        var out: [UInt8] = []
        var lines: [Int] = []
        var raws: [[UInt8]] = []
        while out.count < target, let record = try nextRecord() {
            lines.append(record.line)
            raws.append(record.raw)
            if let defect = record.defect {
                out.append(0x01)
                out.append(contentsOf: Array(defect.explanation.utf8))
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
            let kind = headerFields[k].map(Schema.kind)
            switch kind {
            case .number?, .integer?, .timestamp?: literalOK = isJSONNumber(cell)
            case .bool?: literalOK = cell.elementsEqual("true".utf8) || cell.elementsEqual("false".utf8)
            case .array?: literalOK = isJSONValue(cell)
            default: literalOK = false
            }
            if !literalOK {
                appendJSONString(cell, to: &out)
            } else if kind == .array {
                // A JSON array spread over several lines (a quoted cell with line breaks): its line
                // breaks lie outside strings (a string cannot hold a raw one), so they are spaces.
                for c in cell { out.append(c == 0x0A || c == 0x0D ? 0x20 : c) }
            } else {
                out.append(contentsOf: cell)
            }
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


extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
