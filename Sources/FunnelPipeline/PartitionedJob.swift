import Foundation
import FunnelAttribution
import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelOPE

/// How the events are split for counting: into partitions by user, held within a memory budget.
public struct PartitionPlan: Sendable {
    /// The memory budget in bytes (`--memory`): encoded events beyond a quarter of it are spilled
    /// to temporary files, and partitions are sized so that one being counted fits in an eighth
    /// (two are counted at a time).
    public var memory: Int
    /// Partitions; nil: from the input's size and the budget.
    public var partitions: Int?
    /// Folder for the spilled partitions (`--temp-dir`, else TMPDIR, else /tmp).
    public var temporaryFolder: String

    public static let defaultMemory = 1 << 30

    public init(memory: Int = PartitionPlan.defaultMemory, partitions: Int? = nil, temporaryFolder: String? = nil) {
        self.memory = memory
        self.partitions = partitions
        self.temporaryFolder = temporaryFolder ?? ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    }

    /// Parses a size such as `1G`, `512M`, `800000000`.
    public static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [("GB", 1 << 30), ("G", 1 << 30), ("MB", 1 << 20), ("M", 1 << 20), ("KB", 1 << 10), ("K", 1 << 10), ("B", 1)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count)), v > 0 else { return nil }
            return Int(v * Double(factor))
        }
        guard let v = Int(t), v > 0 else { return nil }
        return v
    }

    /// Partitions for an input of about `bytes` bytes of JSON: a counted partition (its log and
    /// the counting's working set, about 400 bytes an event of about 200 bytes of JSON) in an
    /// eighth of the budget.
    func partitionCount(inputBytes bytes: Int) -> Int {
        if let partitions { return max(1, partitions) }
        let logBytes = Double(bytes) / 200 * 400
        let needed = Int((logBytes / (Double(memory) / 8)).rounded(.up))
        // Past 64 MiB, at least one partition per core, so that counting runs on all of them.
        let cores = bytes > 1 << 26 ? ProcessInfo.processInfo.activeProcessorCount : 1
        return max(1, min(4096, max(needed, cores)))
    }
}

/// What a partitioned run did, for the command's message.
public struct PartitionedRun: Sendable {
    public var summary: ExperimentSummary
    /// The rounds' position-bias tally, when funnel.yaml asks for the report's section.
    public var positionBias: PositionBiasTally?
    public var partitions: Int
    public var spilled: Bool
    public var spilledBytes: Int
}

/// Reads the events once, routes them by user into partitions (spilled to temporary files past the
/// memory budget), reduces each partition to a summary and merges them. Every counting rule works
/// per user (DESIGN.md §7), so the result is the summary of the whole log.
public func summarizePartitioned(_ source: EventSource, config: FunnelConfig, plan: PartitionPlan,
                                 onProgress: (@Sendable (Int) -> Void)? = nil,
                                 onQuarantine: QuarantineHandler? = nil,
                                 partOfLarger: Bool = false) throws(PipelineError) -> PartitionedRun {
    var files: [String] = []
    do { for p in source.paths { files += try EventReader.expand(p) } } catch { throw .input(error) }
    var bytes = EventReader.estimatedBytes(files)
    if files.contains("-") { bytes = max(bytes, plan.memory) }
    if let hint = source.sizeHint { bytes = max(bytes, hint) }
    let count = plan.partitionCount(inputBytes: bytes)
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: plan.temporaryFolder, isDirectory: &isFolder), isFolder.boolValue,
          access(plan.temporaryFolder, W_OK) == 0 else {
        throw PipelineError("--temp-dir \(plan.temporaryFolder): not a writable folder; events past the memory budget are spilled there, so pass a writable folder with free space")
    }
    let t0 = Date()
    let store = PartitionStore(count: count, memoryBudget: plan.memory / 4, folder: plan.temporaryFolder)
    defer { store.removeFiles() }
    let quarantine = try QuarantineFile(path: source.quarantinePath)
    let counters: ReadCounters
    do {
        counters = try EventReader.route(paths: source.paths, format: source.format, into: store, onProgress: onProgress) { row in
            quarantine.write(row)
            onQuarantine?(row)
        }
    } catch {
        quarantine.flush()
        throw .input(error)
    }
    quarantine.flush()
    let timing = ProcessInfo.processInfo.environment["FUNNEL_TIMING"] != nil
    let t1 = Date()
    if timing { FileHandle.standardError.write(Data("route: \(t1.timeIntervalSince(t0)) s, \(count) partitions, spilled \(store.spilled)\n".utf8)) }

    // Count the partitions two at a time when spilled (memory), all cores otherwise.
    let results = ResultSlots<Result<(ExperimentSummary, PositionBiasTally?), PipelineError>>(count: count)
    let width = store.spilled ? 2 : max(1, ProcessInfo.processInfo.activeProcessorCount)
    let waves = (count + width - 1) / width
    for wave in 0..<waves {
        let lo = wave * width, hi = min(count, lo + width)
        DispatchQueue.concurrentPerform(iterations: hi - lo) { k in
            let p = lo + k
            do {
                var log = try store.log(p)
                log.dropIDStrings()
                let (s, attribution) = try Attributor.summarizeWithAttribution(log, config: config, partOfLarger: true)
                results.set(p, .success((s, PositionBiasReport.tally(log: log, attribution: attribution, config: config))))
            } catch let e as PartitionError {
                results.set(p, .failure(PipelineError(e.message)))
            } catch let e as AttributionError {
                results.set(p, .failure(.attribution(e)))
            } catch {
                results.set(p, .failure(PipelineError("\(error)")))
            }
        }
    }
    if timing { FileHandle.standardError.write(Data("count: \(Date().timeIntervalSince(t1)) s\n".utf8)) }
    var merged: ExperimentSummary? = nil
    var tally: PositionBiasTally? = nil
    var experiments: [String] = []
    for r in results.values() {
        let s: ExperimentSummary
        switch r {
        case .success(let x):
            s = x.0
            if let t = x.1 { tally = tally.map { $0.merging(t) } ?? t }
        case .failure(let e): throw e
        }
        if !s.experiment.isEmpty && !experiments.contains(s.experiment) { experiments.append(s.experiment) }
        if experiments.count > 1 {
            let names = experiments.map { "'\($0)'" }.joined(separator: ", ")
            throw .attribution(AttributionError(message: "the events hold several experiments (\(names)); choose one with ab_testing.experiment in funnel.yaml"))
        }
        if let m = merged {
            do { merged = try m.merging(s) } catch { throw PipelineError(error.message) }
        } else {
            merged = s
        }
    }
    guard var summary = merged else { throw PipelineError("no partitions were counted") }
    if summary.experiment.isEmpty && config.experiment == nil && !partOfLarger {
        throw .attribution(.noValidExposure(in: "the events"))
    }
    summary.dataQuality.eventsRead += counters.eventsRead
    for (r, n) in counters.quarantined { summary.dataQuality.quarantined[r, default: 0] += n }
    return PartitionedRun(summary: summary, positionBias: tally, partitions: count, spilled: store.spilled, spilledBytes: store.spilled ? store.sizes.reduce(0, +) : 0)
}
