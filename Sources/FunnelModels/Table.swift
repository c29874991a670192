import Foundation
import FunnelBase

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
    /// (x − mean)/deviation with the training data's mean and standard deviation (a column
    /// without spread: deviation 1) as the value of one feature per column; for values that are
    /// already on a linear scale, where the log transform would bend their effect.
    case standardize
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
    /// `standardize`: per numeric column, the training data's mean and standard deviation.
    public var numericMeans: [Double] = []
    public var numericScales: [Double] = []
    public static let bucketCount = 16
    /// 0: values are hashed into 2^hashBits slots. n ≥ 1: a vocabulary of every (column, value)
    /// seen at least n times in the training data, each with its own slot; other values share one
    /// slot per column.
    public var vocabularyMinCount = 0
    /// The vocabulary's 64-bit (column, value) keys, ascending; slot = position. Stored in the
    /// model file beside the spec.
    public var vocabulary: [UInt64] = []
    /// The conversion label column of a two-label table (the conversion models), whose 1s must
    /// all be on rows whose `label` (the click) is 1.
    public var conversionLabel: String? = nil

    enum CodingKeys: String, CodingKey {
        case label, categorical, numeric, hashBits, numericTransform, bucketBoundaries, numericMeans, numericScales, vocabularyMinCount, conversionLabel
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        label = try c.decode(String.self, forKey: .label)
        categorical = try c.decode([String].self, forKey: .categorical)
        numeric = try c.decode([String].self, forKey: .numeric)
        hashBits = try c.decode(Int.self, forKey: .hashBits)
        numericTransform = try c.decode(NumericTransform.self, forKey: .numericTransform)
        bucketBoundaries = try c.decodeIfPresent([[Double]].self, forKey: .bucketBoundaries) ?? []
        numericMeans = try c.decodeIfPresent([Double].self, forKey: .numericMeans) ?? []
        numericScales = try c.decodeIfPresent([Double].self, forKey: .numericScales) ?? []
        if numericTransform == .standardize && (numericMeans.count != numeric.count || numericScales.count != numeric.count) {
            throw DecodingError.dataCorruptedError(forKey: .numericMeans, in: c,
                debugDescription: "standardize needs one mean and one deviation per numeric column (\(numeric.count))")
        }
        vocabularyMinCount = try c.decodeIfPresent(Int.self, forKey: .vocabularyMinCount) ?? 0
        conversionLabel = try c.decodeIfPresent(String.self, forKey: .conversionLabel)
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

    /// A key folded into 2^hashBits slots.
    @inline(__always)
    func fold(_ k: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: k) & UInt32((1 << hashBits) - 1)
    }
}

/// Rows of (index, value) pairs, one per field, with labels: contiguous row-major buffers.
public struct Table: Sendable {
    public var rows = 0
    public var fields = 0
    public var indices: [UInt32] = []
    public var values: [Float] = []
    public var labels: [Float] = []
    /// The conversion label of each row (1 when the clicked row converted, never 1 on an
    /// unclicked one), when the spec names one (`FeatureSpec.conversionLabel`).
    public var conversions: [Float]? = nil
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
        if let conversions { t.conversions = rows.map { conversions[$0] } }
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
        case "criteo":
            // With a conversion label, the two-label Criteo-like layout: the click, the conversion,
            // then the 13 integer and 26 categorical columns.
            let header = spec.conversionLabel.map { [criteoColumns[0], $0] + criteoColumns.dropFirst() } ?? criteoColumns
            return try readCSV(path: path, spec: spec, group: group, fit: fit, separator: 0x09, header: header,
                               layoutName: spec.conversionLabel == nil ? "Criteo" : "two-label Criteo")
        default: throw ModelError("unknown data format '\(format)'; use csv or criteo")
        }
    }

    /// Reads a comma-separated table with a header row (or `separator`-separated rows named by
    /// `header`, a layout without a header line that errors call `layoutName`; gzip allowed).
    /// Records follow RFC 4180 (`CSVTokenizer`): quoted cells may hold separators, doubled quotes
    /// and line breaks. The rows are parsed on both cores (two halves split at a record end) and
    /// joined in order.
    public static func readCSV(path: String, spec: FeatureSpec, group: String? = nil, fit: Bool = false,
                               separator: UInt8 = 0x2C, header fixedHeader: [String]? = nil, layoutName: String? = nil,
                               overrides: [String: String] = [:]) throws(ModelError) -> (Table, FeatureSpec) {
        let bytes: [UInt8]
        do { bytes = try readFileBytes(path) } catch { throw ModelError(error.description) }
        // Handed over, so that the file's bytes are freed once parsed.
        return try readCSV(bytes: consume bytes, name: path, spec: spec, group: group, fit: fit, separator: separator, header: fixedHeader, layoutName: layoutName, overrides: overrides)
    }

    /// `readCSV(path:…)` on bytes in memory; `name` stands for the file in messages. The bytes are
    /// released as soon as the rows are parsed, and each parsed part as soon as it is laid out, so
    /// that the peak memory is about the table plus the parsed cells, not also the file.
    public static func readCSV(bytes: consuming [UInt8], name path: String, spec: FeatureSpec, group: String? = nil, fit: Bool = false,
                               separator: UInt8 = 0x2C, header fixedHeader: [String]? = nil, layoutName: String? = nil,
                               overrides: [String: String] = [:]) throws(ModelError) -> (Table, FeatureSpec) {
        var spec = spec
        let n = bytes.count
        // A UTF-8 byte-order mark (as spreadsheet programs write) is not part of the first cell;
        // UTF-16 text is refused with what to do.
        let bom: Int
        do throws(InputError) {
            bom = try bytes.withUnsafeBufferPointer { (b) throws(InputError) -> Int in try utf8TextStart(b, path: path) }
        } catch {
            throw ModelError(error.description)
        }
        let tokenizer = CSVTokenizer(separator: separator, quoting: separator == 0x2C)
        // The header: the first non-blank record (unless the layout names the columns).
        var header: [String] = fixedHeader ?? []
        var bodyStart = bom, bodyFirstLine = 1, headerLine = 1
        if fixedHeader == nil {
            var found = false
            var cells: [CSVCell] = []
            try bytes.withUnsafeBufferPointer { (buf: UnsafeBufferPointer<UInt8>) throws(ModelError) in
                var start = bom, line = 1
                while !found, let scan = tokenizer.scan(buf, from: start, limit: n, final: true, into: &cells) {
                    headerLine = line
                    switch scan {
                    case .incomplete: return
                    case .refused(let defect, _, _): throw ModelError("\(path): line \(line): \(defect.explanation)")
                    case .record(let next, let lineFeeds): start = next; line += lineFeeds
                    }
                    if isEmptyRecord(cells) { continue }
                    header = cells.map { CSVTokenizer.string(buf, $0).trimmingCharacters(in: .whitespaces) }
                    found = true
                }
                bodyStart = min(start, n)
                bodyFirstLine = line
            }
            guard found else { throw ModelError("\(path): the file is empty; expected a header and rows") }
        }
        func column(_ name: String, _ role: String) throws(ModelError) -> Int {
            guard let c = header.firstIndex(of: name) else {
                throw ModelError("\(path): line \(headerLine): no column '\(name)' (\(role)); the header has \(header.joined(separator: ", "))")
            }
            return c
        }
        let labelCol = try column(spec.label, "--label")
        let conversionCol: Int? = try spec.conversionLabel.map { c throws(ModelError) in try column(c, "--conversion-label") }
        var catCols: [Int] = [], numCols: [Int] = []
        for c in spec.categorical { catCols.append(try column(c, "--categorical")) }
        for c in spec.numeric { numCols.append(try column(c, "--numeric")) }
        let groupCol: Int? = try group.map { g throws(ModelError) in try column(g, "--group") }
        let layout = RowLayout(path: path, separator: separator, columns: header.count, label: spec.label, labelCol: labelCol,
                               catCols: catCols, numCols: numCols, numericNames: spec.numeric, groupCol: groupCol,
                               conversionCol: conversionCol, conversion: spec.conversionLabel ?? "",
                               fixed: spec.categorical.map { overrides[$0].map { Array($0.utf8) } },
                               layoutName: fixedHeader == nil ? nil : layoutName ?? "given")
        // Two halves split at a record end (one part for small files).
        let cuts = bytes.withUnsafeBufferPointer { b in tokenizer.cuts(b, bodyStart..<n, parts: n - bodyStart > 1 << 22 ? 2 : 1) }
        var firstLines = [bodyFirstLine]
        for k in 1..<(cuts.count - 1) {
            firstLines.append(firstLines[k - 1] + bytes[cuts[k - 1]..<cuts[k]].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) })
        }
        let results = ResultSlots<Result<ParsedRows, ModelError>>(count: cuts.count - 1)
        let spec0 = spec, ranges = cuts, lines = firstLines
        bytes.withUnsafeBufferPointer { buffer in
            let shared = Shared(buffer)
            DispatchQueue.concurrentPerform(iterations: ranges.count - 1) { k in
                do throws(ModelError) {
                    results.set(k, .success(try parseRows(shared.value, ranges[k], ranges[k + 1], firstLine: lines[k], layout: layout, spec: spec0, tokenizer: tokenizer)))
                } catch {
                    results.set(k, .failure(error))
                }
            }
        }
        var parts: [ParsedRows] = []
        for r in results.values() {
            switch r {
            case .success(let part): parts.append(part)
            case .failure(let e): throw e
            }
        }
        bytes = []
        let rows = parts.reduce(0) { $0 + $1.rows }
        guard rows > 0 else {
            throw ModelError(fixedHeader == nil ? "\(path): no rows after the header" : "\(path): the file is empty; expected rows")
        }
        var table = Table()
        table.rows = rows
        table.fields = spec.fieldCount
        table.labels.reserveCapacity(rows)
        for part in parts { table.labels += part.labels }
        if conversionCol != nil { table.conversions = parts.flatMap(\.conversions) }
        if groupCol != nil {
            var ids: [String: Int32] = [:]
            var groups: [Int32] = []
            groups.reserveCapacity(rows)
            for part in parts {
                for key in part.groups {
                    if let g = ids[key] { groups.append(g) } else { let g = Int32(ids.count); ids[key] = g; groups.append(g) }
                }
            }
            table.groups = groups
        }
        let nc = spec.categorical.count, nn = spec.numeric.count, width = nc + nn
        /// Numeric column `j`'s present (non-missing) training values, in row order.
        func presentValues(_ j: Int) -> [Double] {
            parts.flatMap { part in (0..<part.rows).map { part.raw[$0 * nn + j] } }.filter { !$0.isNaN }
        }
        if nn > 0 && fit && spec.numericTransform == .buckets {
            spec.bucketBoundaries = (0..<nn).map { j in
                let v = presentValues(j).sorted()
                guard !v.isEmpty else { return [] }
                var b: [Double] = []
                for q in 1..<FeatureSpec.bucketCount {
                    let x = v[min(v.count - 1, q * v.count / FeatureSpec.bucketCount)]
                    if b.last != x { b.append(x) }
                }
                return b
            }
        }
        if nn > 0 && fit && spec.numericTransform == .standardize {
            let columns = (0..<nn).map(presentValues)
            spec.numericMeans = columns.map { v in v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
            spec.numericScales = zip(columns, spec.numericMeans).map { v, mean in
                let sd = v.isEmpty ? 0 : (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot()
                return sd > 0 && sd.isFinite ? sd : 1
            }
        }
        // Numeric tokens: "missing" or "" (log, standardize), "b<bucket>" (buckets); their keys per column.
        let spec1 = spec
        func tokenKey(_ j: Int, _ token: String) -> UInt64 {
            Array(token.utf8).withUnsafeBufferPointer { spec1.key(field: nc + j, $0) }
        }
        let missingKeys = (0..<nn).map { tokenKey($0, spec1.numericTransform == .buckets ? "b-1" : "missing") }
        let presentKeys = (0..<nn).map { tokenKey($0, "") }
        let bucketKeys = (0..<nn).map { j in (0...(j < spec1.bucketBoundaries.count ? spec1.bucketBoundaries[j].count : 0)).map { tokenKey(j, "b\($0)") } }
        // A present numeric cell's key: its column's one key (log, standardize) or its bucket's.
        let transform = spec1.numericTransform
        let tokenKeys = (0..<nn).map { j in transform == .buckets ? bucketKeys[j] : [presentKeys[j]] }
        let bounds = (0..<nn).map { j in j < spec1.bucketBoundaries.count ? spec1.bucketBoundaries[j] : [] }
        let useVocabulary = spec.vocabularyMinCount > 0
        if useVocabulary && fit {
            // Each part counted on its own thread, then the counts added together.
            let counts = parts.map { _ in KeyTable(capacity: 1 << 16) }
            parts.withUnsafeBufferPointer { partsBuffer in
                let shared = Shared(partsBuffer)
                DispatchQueue.concurrentPerform(iterations: counts.count) { p in
                    let part = shared.value[p], table = counts[p]
                    for k in part.keys { table.increment(k) }
                    for x in 0..<(part.rows * nn) {
                        let j = x % nn
                        if let b = numericToken(part.raw[x], bounds[j], transform) { table.increment(tokenKeys[j][b]) } else { table.increment(missingKeys[j]) }
                    }
                }
            }
            for other in counts.dropFirst() { counts[0].add(other) }
            spec.vocabulary = counts[0].keys(withValueAtLeast: UInt32(clamping: spec.vocabularyMinCount)).sorted()
        }
        // Each cell's slot: its key's position in the vocabulary (the column's "other" slot when
        // absent), or the key folded into the hash slots. A numeric cell's key depends only on its
        // column and on whether it is missing (or its bucket), so those slots are found once.
        let spec2 = spec
        let slots = SlotFinder(spec: spec2, index: useVocabulary ? KeyTable(positionsOf: spec2.vocabulary) : nil)
        let missingSlots = (0..<nn).map { slots.slot(missingKeys[$0], field: nc + $0) }
        let tokenSlots = (0..<nn).map { j in tokenKeys[j].map { slots.slot($0, field: nc + j) } }
        // The final row-major layout: categorical fields, then numeric ones. The arrays grow part by
        // part (their capacity reserved, its pages untouched until written) while each part's
        // parsed cells are released once laid out; a part's rows are laid out on both cores.
        table.indices.reserveCapacity(rows * width)
        table.values.reserveCapacity(rows * width)
        var offset = 0
        for p in parts.indices {
            let part = parts[p]
            parts[p] = ParsedRows()
            table.indices.append(contentsOf: repeatElement(0, count: part.rows * width))
            table.values.append(contentsOf: repeatElement(1, count: part.rows * width))
            let first = offset
            table.indices.withUnsafeMutableBufferPointer { idx in
                table.values.withUnsafeMutableBufferPointer { val in
                    part.keys.withUnsafeBufferPointer { keys in
                        part.raw.withUnsafeBufferPointer { raw in
                            let shared = Shared((idx: idx.baseAddress!, val: val.baseAddress!, keys: keys.baseAddress, raw: raw.baseAddress))
                            let halves = part.rows >= 1 << 14 ? 2 : 1
                            DispatchQueue.concurrentPerform(iterations: halves) { h in
                                let (idx, val, keys, raw) = shared.value
                                for r in (part.rows * h / halves)..<(part.rows * (h + 1) / halves) {
                                    let row = (first + r) * width
                                    for f in 0..<nc { idx[row + f] = slots.slot(keys![r * nc + f], field: f) }
                                    for j in 0..<nn {
                                        let x = raw![r * nn + j]
                                        guard let b = numericToken(x, bounds[j], transform) else {
                                            idx[row + nc + j] = missingSlots[j]
                                            continue
                                        }
                                        idx[row + nc + j] = tokenSlots[j][b]
                                        switch transform {
                                        case .log: val[row + nc + j] = Float((x < 0 ? -1 : 1) * log1p(abs(x)))
                                        case .standardize: val[row + nc + j] = Float((x - spec2.numericMeans[j]) / spec2.numericScales[j])
                                        case .buckets: break
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            offset += part.rows
        }
        return (table, spec)
    }

    /// A cell's slot from its key: the key's position in the vocabulary (its column's "other" slot,
    /// vocabulary size + column, when absent) when `index` holds the vocabulary's positions, else
    /// the key folded into the hash slots.
    struct SlotFinder: Sendable {
        let spec: FeatureSpec
        let index: KeyTable?

        @inline(__always)
        func slot(_ k: UInt64, field: Int) -> UInt32 {
            guard let index else { return spec.fold(k) }
            return index.value(k) ?? UInt32(spec.vocabulary.count + field)
        }
    }

    /// Which of its column's tokens a numeric cell is: nil when missing (empty), else its bucket
    /// (0 … bounds.count) under `.buckets`, and 0 under the other transforms.
    @inline(__always)
    static func numericToken(_ x: Double, _ bounds: [Double], _ transform: NumericTransform) -> Int? {
        if x.isNaN { return nil }
        guard transform == .buckets else { return 0 }
        return bounds.firstIndex(where: { x < $0 }) ?? bounds.count
    }

    /// Where the columns are, for parsing rows.
    struct RowLayout: Sendable {
        var path: String
        var separator: UInt8
        var columns: Int
        var label: String
        var labelCol: Int
        var catCols: [Int]
        var numCols: [Int]
        var numericNames: [String]
        var groupCol: Int?
        var conversionCol: Int?
        var conversion: String
        var fixed: [[UInt8]?]
        /// The named layout without a header line that fixes the columns (nil: the file's header).
        var layoutName: String?
    }

    /// The rows of one byte range: labels, 64-bit keys of the categorical cells, numeric values
    /// (NaN: empty), group keys.
    struct ParsedRows: Sendable {
        var rows = 0
        var labels: [Float] = []
        var conversions: [Float] = []
        var keys: [UInt64] = []
        var raw: [Double] = []
        var groups: [String] = []
    }

    static func parseRows(_ buf: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, firstLine: Int, layout: RowLayout,
                          spec: FeatureSpec, tokenizer: CSVTokenizer) throws(ModelError) -> ParsedRows {
        var out = ParsedRows()
        let estimate = buf[from..<to].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } + 1
        out.labels.reserveCapacity(estimate)
        out.keys.reserveCapacity(estimate * layout.catCols.count)
        out.raw.reserveCapacity(estimate * layout.numCols.count)
        var cells: [CSVCell] = []
        var start = from, nextLine = firstLine
        let path = layout.path
        while let scan = tokenizer.scan(buf, from: start, limit: to, final: true, into: &cells) {
            let line = nextLine
            switch scan {
            case .incomplete: return out
            case .refused(let defect, _, _): throw ModelError("\(path): line \(line): \(defect.explanation)")
            case .record(let next, let lineFeeds): start = next; nextLine += lineFeeds
            }
            if isEmptyRecord(cells) { continue }
            guard cells.count == layout.columns else {
                let source = layout.layoutName.map { "the \($0) layout (no header line) has" } ?? "the header has"
                throw ModelError("\(path): line \(line): \(cells.count) cells, \(source) \(layout.columns)")
            }
            if cells.contains(where: \.escaped) {
                // Doubled quotes: parse the record's values from a copy with each pair made one.
                var copy: [UInt8] = []
                var ranges: [CSVCell] = []
                for c in cells {
                    let v = CSVTokenizer.value(buf, c)
                    ranges.append(CSVCell(range: copy.count..<(copy.count + v.count), quoted: c.quoted, escaped: false))
                    copy += v
                }
                try copy.withUnsafeBufferPointer { (b) throws(ModelError) in
                    try parseRecord(b, ranges, line: line, layout: layout, spec: spec, into: &out)
                }
            } else {
                try parseRecord(buf, cells, line: line, layout: layout, spec: spec, into: &out)
            }
        }
        return out
    }

    /// A record that is an empty line.
    @inline(__always)
    static func isEmptyRecord(_ cells: [CSVCell]) -> Bool { cells.count == 1 && !cells[0].quoted && cells[0].range.isEmpty }

    /// One record's label, keys, numeric values and group.
    @inline(__always)
    static func parseRecord(_ buf: UnsafeBufferPointer<UInt8>, _ cells: [CSVCell], line: Int, layout: RowLayout, spec: FeatureSpec,
                            into out: inout ParsedRows) throws(ModelError) {
        let path = layout.path
        /// The 0/1 value of a label cell.
        func binary(_ cell: Range<Int>, _ name: String) throws(ModelError) -> Float {
            if cell.count == 1 && (buf[cell.lowerBound] == 0x30 || buf[cell.lowerBound] == 0x31) { return buf[cell.lowerBound] == 0x31 ? 1 : 0 }
            let text = String(decoding: buf[cell], as: UTF8.self)
            guard let y = Double(text), y == 0 || y == 1 else {
                throw ModelError("\(path): line \(line), column '\(name)': label '\(text)' must be 0 or 1")
            }
            return Float(y)
        }
        let click = try binary(cells[layout.labelCol].range, layout.label)
        out.labels.append(click)
        if let c = layout.conversionCol {
            let converted = try binary(cells[c].range, layout.conversion)
            guard converted <= click else {
                throw ModelError("\(path): line \(line), column '\(layout.conversion)': a conversion (1) on a row whose '\(layout.label)' is 0; a conversion model counts conversions after a click only, so fix the row or the columns (--label, --conversion-label)")
            }
            out.conversions.append(converted)
        }
        for (f, c) in layout.catCols.enumerated() {
            if let value = layout.fixed[f] {
                out.keys.append(value.withUnsafeBufferPointer { spec.key(field: f, $0) })
            } else {
                out.keys.append(spec.key(field: f, UnsafeBufferPointer(rebasing: buf[cells[c].range])))
            }
        }
        for (j, c) in layout.numCols.enumerated() {
            if cells[c].range.isEmpty { out.raw.append(.nan); continue }
            if let v = plainInteger(buf, cells[c].range) { out.raw.append(v); continue }
            let text = String(decoding: buf[cells[c].range], as: UTF8.self)
            guard let v = Double(text), v.isFinite else {
                throw ModelError("\(path): line \(line), column '\(layout.numericNames[j])': '\(text)' is not a number (use --categorical for text columns)")
            }
            out.raw.append(v)
        }
        if let g = layout.groupCol { out.groups.append(String(decoding: buf[cells[g].range], as: UTF8.self)) }
        out.rows += 1
    }
}
