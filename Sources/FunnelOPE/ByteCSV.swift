import Foundation
import FunnelEvents

/// A comma-separated file with unquoted cells (policy files, Open Bandit logs), read as bytes
/// (gzip allowed): lines end in LF or CRLF, blank lines are skipped, cells are byte ranges trimmed of spaces.
struct ByteCSV {
    let path: String
    let bytes: [UInt8]

    init(path: String, what: String) throws(OPEError) {
        var b: [UInt8]
        do { b = try readFileBytes(path) } catch { throw OPEError("\(path): cannot read the file (\(error.message)); \(what)") }
        self.path = path
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { b.removeFirst(3) }
        bytes = b
    }

    /// Calls `body` with the 1-based line number and the cells of every non-blank line, header first.
    func forEachLine(_ body: (Int, [Range<Int>]) throws(OPEError) -> Void) throws(OPEError) {
        var cells: [Range<Int>] = []
        var line = 0, start = 0
        let n = bytes.count
        while start < n {
            line += 1
            let (stop, end) = bytes.withUnsafeBufferPointer { lineBounds($0, start, n) }
            if stop > start {
                cells.removeAll(keepingCapacity: true)
                var cellStart = start
                for i in start..<stop where bytes[i] == 0x2C {
                    cells.append(trim(cellStart..<i))
                    cellStart = i + 1
                }
                cells.append(trim(cellStart..<stop))
                if bytes[start..<stop].contains(0x22) {
                    throw OPEError("\(path): line \(line): quoted cells are not supported here; write plain comma-separated values")
                }
                try body(line, cells)
            }
            start = end + 1
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
