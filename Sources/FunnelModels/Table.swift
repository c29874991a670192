import Foundation
import FunnelEvents

/// A problem with training or evaluation data or a model file, naming the file, line and column.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum NumericTransform: String, Codable, Sendable, CaseIterable {
    /// sign(x)·log(1 + |x|) as the value of one feature per column.
    case log
    /// One feature per quantile bucket (boundaries from the training data).
    case buckets
}

/// How columns become features: every field contributes one (index, value) pair per row.
/// Categorical values are hashed with the column name into 2^hashBits slots; numeric columns use
/// `numericTransform`.
public struct FeatureSpec: Codable, Sendable, Equatable {
    public var label: String
    public var categorical: [String]
    public var numeric: [String]
    public var hashBits: Int
    public var numericTransform: NumericTransform
    /// Per numeric column, ascending bucket boundaries (filled from the training data).
    public var bucketBoundaries: [[Double]] = []
    public static let bucketCount = 16
    /// 0: values are hashed into 2^hashBits slots. n ≥ 1: a vocabulary of every (column, value)
    /// seen at least n times in the training data, each with its own slot; other values share one
    /// slot per column.
    public var vocabularyMinCount = 0
    /// The vocabulary's 64-bit (column, value) keys, ascending; slot = position. Stored in the
    /// model file beside the spec.
    public var vocabulary: [UInt64] = []

    enum CodingKeys: String, CodingKey { case label, categorical, numeric, hashBits, numericTransform, bucketBoundaries, vocabularyMinCount }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        label = try c.decode(String.self, forKey: .label)
        categorical = try c.decode([String].self, forKey: .categorical)
        numeric = try c.decode([String].self, forKey: .numeric)
        hashBits = try c.decode(Int.self, forKey: .hashBits)
        numericTransform = try c.decode(NumericTransform.self, forKey: .numericTransform)
        bucketBoundaries = try c.decodeIfPresent([[Double]].self, forKey: .bucketBoundaries) ?? []
        vocabularyMinCount = try c.decodeIfPresent(Int.self, forKey: .vocabularyMinCount) ?? 0
    }

    public init(label: String, categorical: [String], numeric: [String], hashBits: Int = 20, numericTransform: NumericTransform = .log) {
        self.label = label
        self.categorical = categorical
        self.numeric = numeric
        self.hashBits = hashBits
        self.numericTransform = numericTransform
    }

    public var fieldCount: Int { categorical.count + numeric.count }
    /// Hash slots, or the vocabulary's slots followed by one "other" slot per column.
    public var slots: Int { vocabularyMinCount > 0 ? vocabulary.count + fieldCount : 1 << hashBits }

    /// FNV-1a over the field number and the value bytes.
    @inline(__always)
    func key(field: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        h = (h ^ UInt64(field & 0xFF)) &* 0x100_0000_01B3
        h = (h ^ UInt64(field >> 8)) &* 0x100_0000_01B3
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        h ^= h >> 29
        return h
    }

    /// The key folded into 2^hashBits slots.
    @inline(__always)
    func slot(field: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        UInt32(truncatingIfNeeded: key(field: field, bytes)) & UInt32((1 << hashBits) - 1)
    }

    /// The vocabulary slot of a key of column `field` (its column's "other" slot when absent).
    @inline(__always)
    func vocabularySlot(_ k: UInt64, field: Int) -> UInt32 {
        var lo = 0, hi = vocabulary.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if vocabulary[mid] < k { lo = mid + 1 } else { hi = mid }
        }
        return lo < vocabulary.count && vocabulary[lo] == k ? UInt32(lo) : UInt32(vocabulary.count + field)
    }
}

/// Rows of (index, value) pairs, one per field, with labels: contiguous row-major buffers.
public struct Table: Sendable {
    public var rows = 0
    public var fields = 0
    public var indices: [UInt32] = []
    public var values: [Float] = []
    public var labels: [Float] = []
    /// Group ids (for GAUC) when a group column was asked for.
    public var groups: [Int32]? = nil

    public init() {}

    /// The table restricted to `rows` (in that order).
    public func subset(_ rows: [Int]) -> Table {
        var t = Table()
        t.rows = rows.count
        t.fields = fields
        t.indices.reserveCapacity(rows.count * fields)
        t.values.reserveCapacity(rows.count * fields)
        for r in rows {
            t.indices.append(contentsOf: indices[r * fields..<(r + 1) * fields])
            t.values.append(contentsOf: values[r * fields..<(r + 1) * fields])
            t.labels.append(labels[r])
        }
        if let groups { t.groups = rows.map { groups[$0] } }
        return t
    }

    /// Every positive and each negative with probability `rate` (seeded).
    public func downsampled(rate: Double, seed: UInt64) -> Table {
        guard rate < 1 else { return self }
        var rng = SplitMix64(seed: seed)
        var kept: [Int] = []
        for r in 0..<rows where rng.unit() < rate || labels[r] > 0.5 { kept.append(r) }
        return subset(kept)
    }
}

/// The value of a cell that is a plain integer (optional sign, at most 15 digits: exact as a
/// Double), else nil (other numbers go through Double's parser).
@inline(__always)
func plainInteger(_ buf: UnsafeBufferPointer<UInt8>, _ cell: Range<Int>) -> Double? {
    var i = cell.lowerBound
    var negative = false
    if buf[i] == 0x2D { negative = true; i += 1 } else if buf[i] == 0x2B { i += 1 }
    let digits = cell.upperBound - i
    guard digits > 0 && digits <= 15 else { return nil }
    var v: Int64 = 0
    while i < cell.upperBound {
        let d = buf[i] &- 0x30
        if d > 9 { return nil }
        v = v * 10 + Int64(d)
        i += 1
    }
    return Double(negative ? -v : v)
}

public enum TableReader {
    /// Reads a CSV table (header row; gzip allowed). With `fit`, numeric bucket boundaries are
    /// computed from this data and stored in the returned spec.
    /// Column names of the Criteo text layout: the label, 13 integer and 26 categorical fields.
    public static let criteoColumns = ["label"] + (1...13).map { "I\($0)" } + (1...26).map { "C\($0)" }

    /// The feature spec of the Criteo layout (label `label`, I1…I13 numeric, C1…C26 categorical).
    public static func criteoSpec(hashBits: Int, numericTransform: NumericTransform) -> FeatureSpec {
        FeatureSpec(label: "label", categorical: (1...26).map { "C\($0)" }, numeric: (1...13).map { "I\($0)" },
                    hashBits: hashBits, numericTransform: numericTransform)
    }

    /// Reads a table in `format` ("csv": comma-separated with a header; "criteo": tab-separated,
    /// no header, the Criteo columns). With `fit`, numeric bucket boundaries are computed from this
    /// data and stored in the returned spec.
    /// `overrides` replaces every cell of the named categorical columns by a fixed value (the
    /// position at prediction time).
    public static func read(path: String, format: String, spec: FeatureSpec, group: String? = nil, fit: Bool = false,
                            overrides: [String: String] = [:]) throws(ModelError) -> (Table, FeatureSpec) {
        switch format {
        case "csv": return try readCSV(path: path, spec: spec, group: group, fit: fit, overrides: overrides)
        case "criteo": return try readCSV(path: path, spec: spec, group: group, fit: fit, separator: 0x09, header: criteoColumns)
        default: throw ModelError("unknown data format '\(format)'; use csv or criteo")
        }
    }

    /// Reads a comma-separated table with a header row (or `separator`-separated rows named by
    /// `header`; gzip allowed).
    public static func readCSV(path: String, spec: FeatureSpec, group: String? = nil, fit: Bool = false,
                               separator: UInt8 = 0x2C, header fixedHeader: [String]? = nil, overrides: [String: String] = [:]) throws(ModelError) -> (Table, FeatureSpec) {
        let fixed: [[UInt8]?] = spec.categorical.map { overrides[$0].map { Array($0.utf8) } }
        let bytes: [UInt8]
        do { bytes = try readFileBytes(path) } catch { throw ModelError(error.description) }
        var spec = spec
        var table = Table()
        table.fields = spec.fieldCount
        var header: [String] = []
        var headerRead = false
        var labelCol = -1, catCols: [Int] = [], numCols: [Int] = [], groupCol: Int? = nil
        var raw: [Double] = []            // numeric values, rows × numeric
        var groupIDs: [String: Int32] = [:]
        var groups: [Int32] = []
        var cells: [Range<Int>] = []
        // Vocabulary mode: the 64-bit key of every categorical cell (rows × categorical), mapped
        // to slots once the vocabulary is known.
        let useVocabulary = spec.vocabularyMinCount > 0
        var keys: [UInt64] = []
        var line = 0, start = 0
        let n = bytes.count
        // Reserve the table's buffers for the number of lines, so that appending never copies.
        let lines = bytes.withUnsafeBufferPointer { b in b.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } } + 1
        table.indices.reserveCapacity(lines * spec.categorical.count)
        table.values.reserveCapacity(lines * spec.categorical.count)
        table.labels.reserveCapacity(lines)
        raw.reserveCapacity(lines * spec.numeric.count)
        if spec.vocabularyMinCount > 0 { keys.reserveCapacity(lines * spec.categorical.count) }
        try bytes.withUnsafeBufferPointer { (buf: UnsafeBufferPointer<UInt8>) throws(ModelError) in
            while start < n {
                line += 1
                var end = start
                while end < n && buf[end] != 0x0A { end += 1 }
                var stop = end
                if stop > start && buf[stop - 1] == 0x0D { stop -= 1 }
                defer { start = end + 1 }
                if stop == start { continue }
                cells.removeAll(keepingCapacity: true)
                var cellStart = start
                var i = start
                var closed = false   // the last cell was quoted and is already appended
                while i < stop {
                    if i == cellStart && buf[i] == 0x22 && separator == 0x2C {
                        // A quoted cell: its value is what lies between the quotes ("" stays doubled).
                        var j = i + 1
                        while j < stop {
                            if buf[j] == 0x22 { if j + 1 < stop && buf[j + 1] == 0x22 { j += 2; continue } else { break } }
                            j += 1
                        }
                        guard j < stop else {
                            throw ModelError("\(path): line \(line): a quoted cell is not closed on its line (values cannot span lines)")
                        }
                        guard j + 1 == stop || buf[j + 1] == separator else {
                            throw ModelError("\(path): line \(line): text after the closing quote of a cell; quote the whole cell")
                        }
                        cells.append((i + 1)..<j)
                        i = j + 2
                        cellStart = i
                        closed = j + 1 == stop
                        continue
                    }
                    if buf[i] == separator { cells.append(cellStart..<i); cellStart = i + 1 }
                    i += 1
                }
                if !closed { cells.append(cellStart..<stop) }
                if !headerRead {
                    headerRead = true
                    header = fixedHeader ?? cells.map { String(decoding: buf[$0], as: UTF8.self).trimmingCharacters(in: .whitespaces) }
                    func column(_ name: String, _ role: String) throws(ModelError) -> Int {
                        guard let c = header.firstIndex(of: name) else {
                            throw ModelError("\(path): line 1: no column '\(name)' (\(role)); the header has \(header.joined(separator: ", "))")
                        }
                        return c
                    }
                    labelCol = try column(spec.label, "--label")
                    for c in spec.categorical { catCols.append(try column(c, "--categorical")) }
                    for c in spec.numeric { numCols.append(try column(c, "--numeric")) }
                    if let group { groupCol = try column(group, "--group") }
                    if fixedHeader == nil { continue }
                }
                guard cells.count == header.count else {
                    throw ModelError("\(path): line \(line): \(cells.count) cells, the header has \(header.count)")
                }
                let labelCell = cells[labelCol]
                if labelCell.count == 1 && (buf[labelCell.lowerBound] == 0x30 || buf[labelCell.lowerBound] == 0x31) {
                    table.labels.append(buf[labelCell.lowerBound] == 0x31 ? 1 : 0)
                } else {
                    let labelText = String(decoding: buf[labelCell], as: UTF8.self)
                    guard let y = Double(labelText), y == 0 || y == 1 else {
                        throw ModelError("\(path): line \(line), column '\(spec.label)': label '\(labelText)' must be 0 or 1")
                    }
                    table.labels.append(Float(y))
                }
                for (f, c) in catCols.enumerated() {
                    let k: UInt64
                    if let value = fixed[f] { k = value.withUnsafeBufferPointer { spec.key(field: f, $0) } } else {
                        k = spec.key(field: f, UnsafeBufferPointer(rebasing: buf[cells[c]]))
                    }
                    if useVocabulary {
                        keys.append(k)
                        table.indices.append(0)
                    } else {
                        table.indices.append(UInt32(truncatingIfNeeded: k) & UInt32((1 << spec.hashBits) - 1))
                    }
                    table.values.append(1)
                }
                for (j, c) in numCols.enumerated() {
                    if cells[c].isEmpty { raw.append(.nan); continue }
                    if let v = plainInteger(buf, cells[c]) { raw.append(v); continue }
                    let text = String(decoding: buf[cells[c]], as: UTF8.self)
                    guard let v = Double(text), v.isFinite else {
                        throw ModelError("\(path): line \(line), column '\(spec.numeric[j])': '\(text)' is not a number (use --categorical for text columns)")
                    }
                    raw.append(v)
                }
                if let groupCol {
                    let key = String(decoding: buf[cells[groupCol]], as: UTF8.self)
                    if let g = groupIDs[key] { groups.append(g) } else {
                        let g = Int32(groupIDs.count)
                        groupIDs[key] = g
                        groups.append(g)
                    }
                }
                table.rows += 1
            }
        }
        guard headerRead else { throw ModelError("\(path): the file is empty; expected \(fixedHeader == nil ? "a header and rows" : "rows")") }
        guard table.rows > 0 else { throw ModelError("\(path): no rows after the header") }
        if groupCol != nil { table.groups = groups }
        let nc = spec.categorical.count, nn = spec.numeric.count
        // Numeric keys: per row and column, the token "missing", "" (present, log transform) or
        // the bucket name.
        var numericKeys: [UInt64] = []
        if nn > 0 && fit && spec.numericTransform == .buckets {
            spec.bucketBoundaries = (0..<nn).map { j in
                let v = (0..<table.rows).map { raw[$0 * nn + j] }.filter { !$0.isNaN }.sorted()
                guard !v.isEmpty else { return [] }
                var b: [Double] = []
                for q in 1..<FeatureSpec.bucketCount {
                    let x = v[min(v.count - 1, q * v.count / FeatureSpec.bucketCount)]
                    if b.last != x { b.append(x) }
                }
                return b
            }
        }
        func numericToken(_ x: Double, _ j: Int) -> (token: [UInt8], value: Float) {
            switch spec.numericTransform {
            case .log:
                return (x.isNaN ? Array("missing".utf8) : [], x.isNaN ? 1 : Float((x < 0 ? -1 : 1) * log1p(abs(x))))
            case .buckets:
                let bounds = j < spec.bucketBoundaries.count ? spec.bucketBoundaries[j] : []
                let bucket = x.isNaN ? -1 : bounds.firstIndex(where: { x < $0 }) ?? bounds.count
                return (Array("b\(bucket)".utf8), 1)
            }
        }
        if useVocabulary {
            numericKeys.reserveCapacity(table.rows * nn)
            for r in 0..<table.rows {
                for j in 0..<nn {
                    let token = numericToken(raw[r * nn + j], j).token
                    numericKeys.append(token.withUnsafeBufferPointer { spec.key(field: nc + j, $0) })
                }
            }
            if fit {
                var counts: [UInt64: Int32] = [:]
                for k in keys { counts[k, default: 0] += 1 }
                for k in numericKeys { counts[k, default: 0] += 1 }
                spec.vocabulary = counts.compactMap { $0.value >= spec.vocabularyMinCount ? $0.key : nil }.sorted()
            }
            for r in 0..<table.rows {
                for f in 0..<nc { table.indices[r * nc + f] = spec.vocabularySlot(keys[r * nc + f], field: f) }
            }
            keys = []
        }
        // Numeric fields go after the categorical ones in each row.
        if nn > 0 {
            var idx = [UInt32](repeating: 0, count: table.rows * (nc + nn)), val = [Float](repeating: 0, count: table.rows * (nc + nn))
            for r in 0..<table.rows {
                for f in 0..<nc {
                    idx[r * (nc + nn) + f] = table.indices[r * nc + f]
                    val[r * (nc + nn) + f] = table.values[r * nc + f]
                }
                for j in 0..<nn {
                    let field = nc + j
                    let (token, value) = numericToken(raw[r * nn + j], j)
                    idx[r * (nc + nn) + field] = useVocabulary
                        ? spec.vocabularySlot(numericKeys[r * nn + j], field: field)
                        : token.withUnsafeBufferPointer { spec.slot(field: field, $0) }
                    val[r * (nc + nn) + field] = value
                }
            }
            table.indices = idx
            table.values = val
        }
        return (table, spec)
    }
}
