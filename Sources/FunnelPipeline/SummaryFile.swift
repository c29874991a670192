import Foundation
import FunnelAttribution
import FunnelEvents
import FunnelOPE
import FunnelStats

/// The summary file (`funnel summarize --out`): one JSON document that names its format and
/// version, the experiment, the counting rules it was computed under, and the summary's parts.
/// Moments are written as their count and their exact fixed-point sums (hexadecimal), so a summary
/// read back is the summary written, bit for bit.
///
/// Version 1 layout:
/// ```
/// {"format": "funnel-summary", "version": 1, "experiment": "…", "rules": "viewability_threshold=0.5;…",
///  "window_hours": [1, 24, 72, 168], "tail_window_ms": 86400000, "end_of_data": 1700000000000,
///  "data_quality": {"events_read": n, "duplicate_events": n, "quarantined.bad_json": n, …},
///  "items_seen": ["item", …],
///  "variants": [{"name": "control", "users": {"dimension": 16, "count": n, "sums": ["64 hex digits", …]},
///                "users_with_pre_data": n, "positions": [[position, impressions, clicks], …],
///                "items": [{"id": "…", "impressions": n, "clicks": n, "purchases": n}, …],
///                "windows": [moments, …], "tail": [{"minute": m, "moments": moments}, …]}, …],
///  "segments": [{"dimension": "…", "value": "…", "groups": [{"variant": "…", "moments": moments}, …]}, …],
///  "position_bias": {"settings": "randomized_context=…;ranker_context=…;bootstrap=100", "tally": {…}}}
/// ```
/// `position_bias` is there when funnel.yaml asked for the report's position-bias section: the
/// rounds' tally (`PositionBiasTally.Portable`: integer counts per cell, with each bootstrap
/// replicate's, and the variants' counts).
public enum SummaryFile {
    public static let format = "funnel-summary"
    public static let version = 1

    /// Sums as four 16-digit hexadecimal limbs, most significant first: the exact 256-bit
    /// two's-complement sum in units of 2⁻¹²⁰.
    struct MomentsDTO: Codable {
        var dimension: Int
        var count: Int
        var sums: [String]
    }
    struct ItemDTO: Codable { var id: String; var impressions: Int; var clicks: Int; var purchases: Int }
    struct TailDTO: Codable { var minute: Int64; var moments: MomentsDTO }
    struct VariantDTO: Codable {
        var name: String
        var users: MomentsDTO
        var usersWithPreData: Int
        var positions: [[Int]]
        var items: [ItemDTO]
        var windows: [MomentsDTO]
        var tail: [TailDTO]
        enum CodingKeys: String, CodingKey {
            case name, users, usersWithPreData = "users_with_pre_data", positions, items, windows, tail
        }
    }
    struct GroupDTO: Codable { var variant: String; var moments: MomentsDTO }
    struct SegmentDTO: Codable { var dimension: String; var value: String; var groups: [GroupDTO] }
    struct Header: Codable { var format: String?; var version: Int? }
    struct PositionBiasDTO: Codable { var settings: String; var tally: PositionBiasTally.Portable }
    struct FileDTO: Codable {
        var format: String
        var version: Int
        var experiment: String
        var rules: String
        var windowHours: [Double]
        var tailWindowMs: Int64
        var endOfData: Int64?
        var dataQuality: [String: Int]
        var itemsSeen: [String]
        var variants: [VariantDTO]
        var segments: [SegmentDTO]
        var positionBias: PositionBiasDTO?
        enum CodingKeys: String, CodingKey {
            case format, version, experiment, rules, windowHours = "window_hours", tailWindowMs = "tail_window_ms"
            case endOfData = "end_of_data", dataQuality = "data_quality", itemsSeen = "items_seen", variants, segments
            case positionBias = "position_bias"
        }
    }

    static func dto(_ m: Moments) -> MomentsDTO {
        MomentsDTO(dimension: m.dimension, count: m.count, sums: m.sums.map { f in f.limbs.reversed().map { hex16($0) }.joined() })
    }

    static func moments(_ d: MomentsDTO, _ path: String) throws(PipelineError) -> Moments {
        var sums: [FixedSum] = []
        for text in d.sums {
            let chars = Array(text.utf8)
            var limbs: [UInt64] = []
            if chars.count == 64 {
                for k in stride(from: 48, through: 0, by: -16) {
                    guard let v = UInt64(String(decoding: chars[k..<k + 16], as: UTF8.self), radix: 16) else { break }
                    limbs.append(v)
                }
            }
            guard limbs.count == 4 else {
                throw PipelineError("\(path): a moments sum '\(text)' is not 64 hexadecimal digits; the file is damaged — run funnel summarize again")
            }
            sums.append(FixedSum(limbs: limbs))
        }
        guard let m = Moments(dimension: d.dimension, count: d.count, sums: sums) else {
            throw PipelineError("\(path): a moments entry has \(d.sums.count) sums for dimension \(d.dimension); the file is damaged — run funnel summarize again")
        }
        return m
    }

    static func hex16(_ v: UInt64) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h
    }

    /// The data-quality counters by their key in the file (DESIGN.md §5's names), one list for
    /// writing and reading.
    static func counterFields() -> [(String, WritableKeyPath<DataQuality, Int>)] {
        [("events_read", \.eventsRead), ("duplicate_events", \.duplicateEvents), ("bot_users", \.botUsers),
         ("non_viewable_impressions", \.nonViewableImpressions), ("collapsed_impressions", \.collapsedImpressions),
         ("orphan_clicks", \.orphanClicks), ("late_clicks", \.lateClicks), ("unattributed_conversions", \.unattributedConversions),
         ("leaked_users", \.leakedUsers), ("variant_mismatches", \.variantMismatches), ("non_viewable_clicks", \.nonViewableClicks),
         ("duplicate_clicks", \.duplicateClicks), ("exposed_users", \.exposedUsers)]
    }

    static func counters(_ dq: DataQuality) -> [String: Int] {
        var out: [String: Int] = [:]
        for (key, path) in counterFields() { out[key] = dq[keyPath: path] }
        for r in QuarantineReason.allCases { out["quarantined.\(r.rawValue)"] = dq.quarantined[r] ?? 0 }
        return out
    }

    static func dataQuality(_ c: [String: Int], _ path: String) throws(PipelineError) -> DataQuality {
        var dq = DataQuality()
        let fields = Dictionary(uniqueKeysWithValues: counterFields())
        for (key, n) in c {
            if let field = fields[key] {
                dq[keyPath: field] = n
            } else if key.hasPrefix("quarantined."), let r = QuarantineReason(rawValue: String(key.dropFirst("quarantined.".count))) {
                dq.quarantined[r] = n
            } else {
                throw PipelineError("\(path): data_quality has an unknown counter '\(key)'; the file was written by another Funnel version — run funnel summarize again with this one")
            }
        }
        return dq
    }

    /// The summary as the file's bytes (keys sorted, so equal summaries give equal files).
    /// A summary file's contents: the summary, and the position-bias tally with the settings it
    /// was made under when the file has one.
    public struct Contents: Sendable {
        public var summary: ExperimentSummary
        public var positionBias: (settings: String, tally: PositionBiasTally)?
        public init(summary: ExperimentSummary, positionBias: (settings: String, tally: PositionBiasTally)? = nil) {
            self.summary = summary
            self.positionBias = positionBias
        }
    }

    public static func encode(_ s: ExperimentSummary) throws(PipelineError) -> Data { try encode(Contents(summary: s)) }

    public static func encode(_ contents: Contents) throws(PipelineError) -> Data {
        let s = contents.summary
        let variants = s.variants.keys.sorted().map { name -> VariantDTO in
            let v = s.variants[name]!
            return VariantDTO(
                name: name, users: dto(v.users), usersWithPreData: v.usersWithPreData,
                positions: v.positions.keys.sorted().map { [Int($0), v.positions[$0]!.impressions, v.positions[$0]!.clicks] },
                items: v.items.keys.sorted().map { ItemDTO(id: $0, impressions: v.items[$0]!.impressions, clicks: v.items[$0]!.clicks, purchases: v.items[$0]!.purchases) },
                windows: v.windows.map(dto), tail: v.tail.keys.sorted().map { TailDTO(minute: $0, moments: dto(v.tail[$0]!)) })
        }
        let segments = s.segments.keys.sorted().map { key in
            SegmentDTO(dimension: key.dimension, value: key.value,
                       groups: s.segments[key]!.keys.sorted().map { GroupDTO(variant: $0, moments: dto(s.segments[key]![$0]!)) })
        }
        let file = FileDTO(format: format, version: version, experiment: s.experiment, rules: s.rules, windowHours: s.windowHours,
                           tailWindowMs: s.tailWindow, endOfData: s.endOfData == Int64.min ? nil : s.endOfData,
                           dataQuality: counters(s.dataQuality), itemsSeen: s.itemsSeen.sorted(), variants: variants, segments: segments,
                           positionBias: contents.positionBias.map { PositionBiasDTO(settings: $0.settings, tally: $0.tally.portable) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return try encoder.encode(file) } catch {
            throw PipelineError("cannot encode the summary: \(error)")
        }
    }

    /// Reads a summary file; a clear error for another format, another version or damage.
    public static func decode(_ data: Data, path: String) throws(PipelineError) -> ExperimentSummary { try decodeContents(data, path: path).summary }

    public static func decodeContents(_ data: Data, path: String) throws(PipelineError) -> Contents {
        let decoder = JSONDecoder()
        guard let header = try? decoder.decode(Header.self, from: data), header.format == format else {
            throw PipelineError("\(path): not a Funnel summary (no \"format\": \"\(format)\"); pass files written by funnel summarize --out")
        }
        guard header.version == version else {
            throw PipelineError("\(path): summary format version \(header.version.map(String.init) ?? "?"), this Funnel reads version \(version); run funnel summarize again with this version")
        }
        let file: FileDTO
        do { file = try decoder.decode(FileDTO.self, from: data) } catch {
            throw PipelineError("\(path): the summary is damaged (\(error)); run funnel summarize again")
        }
        var s = ExperimentSummary(experiment: file.experiment, rules: file.rules, windowHours: file.windowHours, tailWindow: file.tailWindowMs)
        s.endOfData = file.endOfData ?? Int64.min
        s.dataQuality = try dataQuality(file.dataQuality, path)
        s.itemsSeen = Set(file.itemsSeen)
        for v in file.variants {
            var part = VariantSummary()
            part.users = try moments(v.users, path)
            part.usersWithPreData = v.usersWithPreData
            for p in v.positions {
                guard p.count == 3 else { throw PipelineError("\(path): variant \(v.name): a position entry must be [position, impressions, clicks]") }
                part.positions[Int32(p[0])] = { var c = PositionCounts(); c.impressions = p[1]; c.clicks = p[2]; return c }()
            }
            for i in v.items {
                var c = ItemCounts(); c.impressions = i.impressions; c.clicks = i.clicks; c.purchases = i.purchases
                part.items[i.id] = c
            }
            for w in v.windows { part.windows.append(try moments(w, path)) }
            guard part.windows.count == file.windowHours.count else {
                throw PipelineError("\(path): variant \(v.name) has \(part.windows.count) window moments for \(file.windowHours.count) windows; the file is damaged — run funnel summarize again")
            }
            for t in v.tail { part.tail[t.minute] = try moments(t.moments, path) }
            s.variants[v.name] = part
        }
        for seg in file.segments {
            var groups: [String: Moments] = [:]
            for g in seg.groups { groups[g.variant] = try moments(g.moments, path) }
            s.segments[SegmentKey(dimension: seg.dimension, value: seg.value)] = groups
        }
        guard let pb = file.positionBias else { return Contents(summary: s) }
        do { return Contents(summary: s, positionBias: (pb.settings, try PositionBiasTally(portable: pb.tally))) } catch {
            throw PipelineError("\(path): \(error.message); the file is damaged — run funnel summarize again")
        }
    }
}
