import Foundation
import FunnelBase
import Testing

/// Every record of `bytes` as cell strings, and the index of the first refused record (counting
/// records that are not empty lines), scanned in one piece.
func tokenize(_ bytes: [UInt8], chunked: Bool = false) -> (rows: [[String]], refused: Int?) {
    let tokenizer = CSVTokenizer()
    var rows: [[String]] = []
    var cells: [CSVCell] = []
    return bytes.withUnsafeBufferPointer { all -> ([[String]], Int?) in
        var start = (try? utf8TextStart(all, path: "case")) ?? 0
        // Chunked: offer the bytes a few at a time, as a streaming reader does, and scan again from
        // the same start when the record is incomplete.
        var limit = chunked ? min(all.count, start + 3) : all.count
        while true {
            guard let scan = tokenizer.scan(all, from: start, limit: limit, final: limit == all.count, into: &cells) else { break }
            switch scan {
            case .incomplete:
                limit = min(all.count, limit + 3)
                continue
            case .refused:
                return (rows, rows.count)
            case .record(let next, _):
                start = next
                if chunked { limit = min(all.count, max(limit, start + 3)) }
            }
            if cells.count == 1 && !cells[0].quoted && cells[0].range.isEmpty { continue }
            rows.append(cells.map { CSVTokenizer.string(all, $0) })
        }
        return (rows, nil)
    }
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
    while let a = it.next(), let b = it.next() { out.append(nibble(a) << 4 | nibble(b)) }
    return out
}

struct CSVTokenizerTests {
    struct Case: Decodable {
        var `case`: Int
        var bytes_hex: String
        var rows: [[String]]
        var error_row: Int?
    }

    /// Python's `csv` module (strict) on 3,000 random RFC 4180 files made by
    /// tools/reference/csv_fuzz.py: the same cells, or the same record refused.
    @Test("the tokenizer reads 3,000 random files as Python's csv module does", .timeLimit(.minutes(5)))
    func differentialAgainstPythonCSV() throws {
        let url = try #require(Bundle.module.url(forResource: "csv_fuzz", withExtension: "jsonl", subdirectory: "Fixtures"))
        let text = try String(contentsOf: url, encoding: .utf8)
        var checked = 0, refused = 0
        for line in text.split(separator: "\n") {
            let c = try JSONDecoder().decode(Case.self, from: Data(line.utf8))
            let bytes = hexBytes(c.bytes_hex)
            for chunked in [false, true] {
                let got = tokenize(bytes, chunked: chunked)
                #expect(got.rows == c.rows, "case \(c.case) (chunked: \(chunked))")
                #expect(got.refused == c.error_row, "case \(c.case) (chunked: \(chunked))")
            }
            checked += 1
            if c.error_row != nil { refused += 1 }
        }
        #expect(checked == 3000)
        #expect(refused > 100)
    }

    @Test("hand-worked records: quotes, doubled quotes, line breaks, CRLF, empty cells")
    func handWorked() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\n\n\"\",\n"
        let got = tokenize(Array(text.utf8))
        #expect(got.rows == [["a", "b,c", "say \"hi\""], ["two\nlines", "", "x"], ["", ""]])
        #expect(got.refused == nil)
    }

    @Test("text after a closing quote refuses the record; reading resumes on the next line")
    func textAfterQuote() {
        let tokenizer = CSVTokenizer()
        let bytes = Array("\"ab\"c,d\ne,f\n".utf8)
        var cells: [CSVCell] = []
        bytes.withUnsafeBufferPointer { b in
            #expect(tokenizer.scan(b, from: 0, limit: b.count, final: true, into: &cells) == .refused(.textAfterClosingQuote(offset: 4), next: 8, lineFeeds: 1))
            #expect(tokenizer.scan(b, from: 8, limit: b.count, final: true, into: &cells) == .record(next: 12, lineFeeds: 1))
            #expect(cells.map { CSVTokenizer.string(b, $0) } == ["e", "f"])
        }
    }

    @Test("a quoted cell open at the end refuses the record; before the end it is incomplete")
    func unterminated() {
        let tokenizer = CSVTokenizer()
        let bytes = Array("a,\"bc\nd".utf8)
        var cells: [CSVCell] = []
        bytes.withUnsafeBufferPointer { b in
            #expect(tokenizer.scan(b, from: 0, limit: b.count, final: false, into: &cells) == .incomplete)
            #expect(tokenizer.scan(b, from: 0, limit: b.count, final: true, into: &cells) == .refused(.unterminatedQuote(offset: 2), next: 7, lineFeeds: 1))
        }
    }

    @Test("tab-separated layouts have no quoting")
    func tabs() {
        let tokenizer = CSVTokenizer(separator: 0x09, quoting: false)
        let bytes = Array("1\t\"a\t\tb\n".utf8)
        var cells: [CSVCell] = []
        bytes.withUnsafeBufferPointer { b in
            #expect(tokenizer.scan(b, from: 0, limit: b.count, final: true, into: &cells) == .record(next: 8, lineFeeds: 1))
            #expect(cells.map { CSVTokenizer.string(b, $0) } == ["1", "\"a", "", "b"])
        }
    }

    @Test("cut points for parallel parsing fall on record ends outside quoted cells")
    func cuts() {
        let text = "h\n\"a\nb\nc\nd\",1\nx,2\n\"e\nf\",3\ny,4\n"
        let bytes = Array(text.utf8)
        bytes.withUnsafeBufferPointer { b in
            let tokenizer = CSVTokenizer()
            for parts in 1...6 {
                let cuts = tokenizer.cuts(b, 2..<b.count, parts: parts)
                #expect(cuts.first == 2 && cuts.last == b.count)
                // Every cut starts a record: scanning from the first record reaches each cut exactly.
                var starts: Set<Int> = [2]
                var i = 2
                var cells: [CSVCell] = []
                while let scan = tokenizer.scan(b, from: i, limit: b.count, final: true, into: &cells), case .record(let next, _) = scan {
                    starts.insert(next)
                    i = next
                }
                for c in cuts { #expect(starts.contains(c), "parts \(parts): cut \(c)") }
            }
        }
    }

    @Test("UTF-16 input is refused with what to do; a UTF-8 byte-order mark is skipped")
    func encodings() throws {
        for bytes: [UInt8] in [[0xFF, 0xFE, 0x61, 0x00], [0xFE, 0xFF, 0x00, 0x61], [0x61, 0x00, 0x2C, 0x00]] {
            _ = bytes.withUnsafeBufferPointer { b in
                #expect(throws: InputError.self) { try utf8TextStart(b, path: "x.csv") }
            }
        }
        let skip = try [UInt8]([0xEF, 0xBB, 0xBF, 0x61]).withUnsafeBufferPointer { b in try utf8TextStart(b, path: "x.csv") }
        #expect(skip == 3)
    }
}
