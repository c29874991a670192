import Foundation
import FunnelBase

/// A comma-separated file (policy files, Open Bandit logs), read as bytes (gzip allowed) with
/// Funnel's CSV tokenizer (RFC 4180): blank records are skipped, cells are byte ranges trimmed of
/// spaces. A quoted cell holding doubled quotes is read from a copy with each pair made one, kept
/// after the file's bytes (a range at or past `bytes.count` points into that copy).
final class ByteCSV {
    let path: String
    private(set) var bytes: [UInt8]
    let fileSize: Int

    init(path: String, what: String) throws(OPEError) {
        var b: [UInt8]
        do { b = try readFileBytes(path) } catch { throw OPEError("\(path): cannot read the file (\(error.message)); \(what)") }
        self.path = path
        let skip: Int
        do throws(InputError) {
            skip = try b.withUnsafeBufferPointer { (buf) throws(InputError) -> Int in try utf8TextStart(buf, path: path) }
        } catch {
            throw OPEError(error.description)
        }
        b.removeFirst(skip)
        fileSize = b.count
        bytes = b
    }

    /// Calls `body` with the 1-based first line number and the cells of every non-blank record,
    /// header first.
    func forEachLine(_ body: (Int, [Range<Int>]) throws(OPEError) -> Void) throws(OPEError) {
        let tokenizer = CSVTokenizer()
        var cells: [CSVCell] = []
        var ranges: [Range<Int>] = []
        var start = 0, line = 1
        while true {
            var copied: [UInt8] = []
            let scan = bytes.withUnsafeBufferPointer { buf -> CSVScan? in
                guard let scan = tokenizer.scan(buf, from: start, limit: fileSize, final: true, into: &cells) else { return nil }
                ranges.removeAll(keepingCapacity: true)
                for c in cells {
                    if c.escaped {
                        let value = CSVTokenizer.value(buf, c)
                        let at = fileSize + copied.count
                        copied += value
                        ranges.append(at..<(at + value.count))
                    } else {
                        ranges.append(c.range)
                    }
                }
                return scan
            }
            guard let scan else { return }
            let recordLine = line
            switch scan {
            case .incomplete: return
            case .refused(let defect, _, _): throw OPEError("\(path): line \(recordLine): \(defect.explanation)")
            case .record(let next, let lineFeeds): start = next; line += lineFeeds
            }
            if cells.count == 1 && !cells[0].quoted && ranges[0].allSatisfy({ bytes[$0] == 0x20 || bytes[$0] == 0x09 || bytes[$0] == 0x0D }) { continue }
            if !copied.isEmpty {
                bytes.removeSubrange(fileSize...)
                bytes += copied
            }
            for k in ranges.indices { ranges[k] = trim(ranges[k]) }
            try body(recordLine, ranges)
        }
    }

    func trim(_ r: Range<Int>) -> Range<Int> {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi && bytes[lo] == 0x20 { lo += 1 }
        while hi > lo && bytes[hi - 1] == 0x20 { hi -= 1 }
        return lo..<hi
    }

    func string(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }

    /// A decimal integer (optional sign), or nil.
    func int(_ r: Range<Int>) -> Int? {
        guard !r.isEmpty else { return nil }
        var i = r.lowerBound
        var negative = false
        if bytes[i] == 0x2D || bytes[i] == 0x2B { negative = bytes[i] == 0x2D; i += 1 }
        guard i < r.upperBound, r.upperBound - i <= 18 else { return nil }
        var v = 0
        while i < r.upperBound {
            let d = Int(bytes[i]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
            i += 1
        }
        return negative ? -v : v
    }

    /// A floating-point number (C `strtod` syntax, whole cell), or nil.
    func double(_ r: Range<Int>) -> Double? {
        guard !r.isEmpty, r.count < 64 else { return r.isEmpty ? nil : Double(string(r)) }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: r.count + 1) { buf -> Double? in
            for (j, i) in r.enumerated() { buf[j] = CChar(bitPattern: bytes[i]) }
            buf[r.count] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(buf.baseAddress!, &end)
            guard let end, end == buf.baseAddress! + r.count else { return nil }
            return v
        }
    }
}
