import Foundation
import FunnelBase
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelOPE
import FunnelReport

/// Item cohorts for the mix-versus-rate diagnosis: the cohort of each item the file names, and the
/// catalog size (the file's items).
public struct ItemCohorts: Sendable {
    public var cohorts: [String: String]
    public var catalogSize: Int
}

/// Reads an item attribute file: a CSV header naming `item_id` and a cohort column (`cohort`, or
/// else the other of the first two columns), then one item per record.
public func loadCohorts(path: String) throws(PipelineError) -> ItemCohorts {
    let bytes: [UInt8]
    do { bytes = try readFileBytes(path) } catch {
        throw PipelineError("--items \(path): cannot read the file (\(error.message)); pass a CSV with columns item_id,cohort")
    }
    return try bytes.withUnsafeBufferPointer { (buf) throws(PipelineError) -> ItemCohorts in
        var start: Int
        do throws(InputError) { start = try utf8TextStart(buf, path: path) } catch { throw PipelineError("--items \(error.description)") }
        let tokenizer = CSVTokenizer()
        var cells: [CSVCell] = []
        var line = 1
        var header: [String]? = nil
        var itemColumn = 0, cohortColumn = 1
        var cohorts: [String: String] = [:]
        var catalog = 0
        func text(_ cell: CSVCell) -> String { CSVTokenizer.string(buf, cell).trimmingCharacters(in: .whitespaces) }
        while let scan = tokenizer.scan(buf, from: start, limit: buf.count, final: true, into: &cells) {
            let recordLine = line
            switch scan {
            case .incomplete: throw PipelineError("--items \(path): line \(recordLine): the record does not end")
            case .refused(let defect, _, _): throw PipelineError("--items \(path): line \(recordLine): \(defect.explanation)")
            case .record(let next, let lineFeeds): start = next; line += lineFeeds
            }
            if CSVTokenizer.isBlank(buf, cells) { continue }
            guard let names = header else {
                let names = cells.map(text)
                guard let item = names.firstIndex(of: "item_id"), names.count >= 2 else {
                    throw PipelineError("--items \(path): line \(recordLine): the header must name item_id and a cohort column (e.g. item_id,cohort)")
                }
                itemColumn = item
                cohortColumn = names.firstIndex(of: "cohort") ?? (item == 0 ? 1 : 0)
                header = names
                continue
            }
            guard cells.count > max(itemColumn, cohortColumn) else {
                throw PipelineError("--items \(path): line \(recordLine): expected \(names.count) cells, found \(cells.count)")
            }
            catalog += 1
            cohorts[text(cells[itemColumn])] = text(cells[cohortColumn])
        }
        guard header != nil else { throw PipelineError("--items \(path): the file is empty; expected a header item_id,cohort") }
        return ItemCohorts(cohorts: cohorts, catalogSize: catalog)
    }
}

/// The report document (DESIGN.md §5) of a summary: statistics and diagnosis.
public func buildReport(summary: ExperimentSummary, config: FunnelConfig, cohorts: ItemCohorts? = nil) -> JSONValue {
    let inputs = DiagnosisInputs(cohorts: cohorts?.cohorts, catalogSize: cohorts?.catalogSize)
    return ReportBuilder(summary: summary, config: config, diagnosis: inputs).json()
}

/// Runs the counting rules, the statistics and the diagnosis on a log: the report document
/// (DESIGN.md §5), with the position-bias section when the log has randomized rounds.
public func buildReport(log: EventLog, config: FunnelConfig, cohorts: ItemCohorts? = nil) throws(PipelineError) -> JSONValue {
    let attribution: Attribution, windows: [Attribution]
    do { (attribution, windows) = try Attributor.runWithSensitivity(log, config: config) } catch { throw .attribution(error) }
    let summary: ExperimentSummary
    do { summary = try Attributor.summary(attribution, windows: windows, log: log, config: config) } catch { throw .attribution(error) }
    return try PositionBiasReport.appending(to: buildReport(summary: summary, config: config, cohorts: cohorts),
                                            tally: PositionBiasReport.tally(log: log, attribution: attribution, config: config), config: config)
}

/// The whole report job: read the events (or merge summaries) and the configuration, count, analyse.
public struct ReportJob: Sendable {
    public var source: EventSource
    public var configPath: String?
    public var itemsPath: String?
    /// Summary files (`funnel summarize --out`) to merge instead of reading events.
    public var summaryPaths: [String]
    /// How the events are partitioned by user within the memory budget.
    public var plan: PartitionPlan
    /// The experiment to analyse, over the config's `experiment` (the collector's `?experiment=`).
    public var experiment: String?
    /// Lines the events went through before this job read them, rejected or duplicate there (a
    /// collector's ingestion): added to the report's reading counters, so that the report of a
    /// store counts what was sent to it as the report of the sent file counts its lines.
    public var upstream: ReadCounters?
    /// Always-valid inference, over the config's `ab_testing.sequential` (`--sequential`).
    public var sequential: SequentialMethod?
    /// Count only the events up to this instant (epoch ms, `--as-of`).
    public var asOf: Int64?

    public init(source: EventSource, configPath: String? = nil, itemsPath: String? = nil, summaryPaths: [String] = [],
                plan: PartitionPlan = PartitionPlan()) {
        self.source = source
        self.configPath = configPath
        self.itemsPath = itemsPath
        self.summaryPaths = summaryPaths
        self.plan = plan
    }

    public func run(onProgress: (@Sendable (Int) -> Void)? = nil) throws(PipelineError) -> JSONValue {
        var config = try loadConfig(configPath)
        if let experiment { config.experiment = experiment }
        if let sequential { config.sequential = sequential }
        if let asOf { config.asOf = asOf }
        let cohorts = try itemsPath.map { (p) throws(PipelineError) in try loadCohorts(path: p) }
        var summary: ExperimentSummary, tally: PositionBiasTally?
        if !summaryPaths.isEmpty {
            (summary, tally) = try mergeSummaries(summaryPaths, config: config)
        } else {
            let run = try summarizePartitioned(source, config: config, plan: plan, onProgress: onProgress)
            (summary, tally) = (run.summary, run.positionBias)
            if let upstream {
                summary.dataQuality.eventsRead += upstream.eventsRead
                summary.dataQuality.duplicateEvents += upstream.duplicateEvents
                for (reason, n) in upstream.quarantined { summary.dataQuality.quarantined[reason, default: 0] += n }
            }
        }
        return try PositionBiasReport.appending(to: buildReport(summary: summary, config: config, cohorts: cohorts), tally: tally, config: config)
    }
}

/// Reads summary files and merges them; an error when they disagree with each other or with
/// `config` (another experiment, other counting rules, another format version).
/// With the report's position-bias section asked for, every file must hold a tally made under the
/// same position-bias settings; the tallies are merged too.
public func mergeSummaries(_ paths: [String], config: FunnelConfig) throws(PipelineError) -> (summary: ExperimentSummary, positionBias: PositionBiasTally?) {
    var merged: ExperimentSummary? = nil
    var tally: PositionBiasTally? = nil
    let wantsPositionBias = PositionBiasReport.wanted(config), settings = PositionBiasReport.settings(config)
    for path in paths {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PipelineError("--summaries \(path): cannot read the file; pass files written by funnel summarize --out")
        }
        let contents = try SummaryFile.decodeContents(data, path: path)
        let s = contents.summary
        if wantsPositionBias {
            guard let pb = contents.positionBias else {
                throw PipelineError("--summaries \(path): holds no position-bias tally, and funnel.yaml asks for the position_bias section; run funnel summarize with this funnel.yaml, or set position_bias.method: none")
            }
            guard pb.settings == settings else {
                throw PipelineError("--summaries \(path): its position-bias tally was made under \(pb.settings), the configuration's is \(settings); run funnel summarize with this funnel.yaml")
            }
            tally = tally.map { $0.merging(pb.tally) } ?? pb.tally
        }
        let rules = ExperimentSummary.rulesKey(config)
        guard s.rules == rules else {
            throw PipelineError("--summaries \(path): computed under other counting rules (\(s.rules)) than the configuration's (\(rules)); pass the --config the summaries were made with")
        }
        if let name = config.experiment, name != s.experiment {
            throw PipelineError("--summaries \(path): a summary of experiment '\(s.experiment)', but ab_testing.experiment is '\(name)'")
        }
        if let m = merged {
            do { merged = try m.merging(s) } catch { throw PipelineError("--summaries \(path): \(error.message)") }
        } else {
            merged = s
        }
    }
    guard let merged else { throw PipelineError("--summaries: no files given") }
    if merged.experiment.isEmpty && config.experiment == nil {
        throw .attribution(.noValidExposure(in: "the summaries"))
    }
    return (merged, tally)
}

/// `funnel summarize`: the summary of the users in the events, written to a file.
public struct SummarizeJob: Sendable {
    public var source: EventSource
    public var configPath: String?
    public var outPath: String
    public var plan: PartitionPlan
    /// The events are one part of a larger log (a Spark task's partition): the summary is written
    /// even when the part holds no exposure, and `funnel report --summaries` checks the whole.
    public var partOfLarger: Bool

    public init(source: EventSource, configPath: String? = nil, outPath: String, plan: PartitionPlan = PartitionPlan(), partOfLarger: Bool = false) {
        self.source = source
        self.configPath = configPath
        self.outPath = outPath
        self.plan = plan
        self.partOfLarger = partOfLarger
    }

    public func run(onProgress: (@Sendable (Int) -> Void)? = nil) throws(PipelineError) -> ExperimentSummary {
        let config = try loadConfig(configPath)
        let run = try summarizePartitioned(source, config: config, plan: plan, onProgress: onProgress, partOfLarger: partOfLarger)
        let data = try SummaryFile.encode(SummaryFile.Contents(summary: run.summary,
                                                               positionBias: run.positionBias.map { (PositionBiasReport.settings(config), $0) }))
        try writeAtomically(data, to: outPath, option: "--out")
        return run.summary
    }
}

/// Writes a file through a temporary sibling and a rename, so a failure leaves no partial output;
/// `-` writes to standard output.
public func writeAtomically(_ data: Data, to path: String, option: String) throws(PipelineError) {
    if path == "-" {
        FileHandle.standardOutput.write(data)
        return
    }
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).partial")
    var reason: String? = nil
    do { try data.write(to: temporary) } catch { reason = (error as NSError).localizedFailureReason ?? error.localizedDescription }
    if reason == nil && rename(temporary.path, path) != 0 { reason = String(cString: strerror(errno)) }
    if let reason {
        try? FileManager.default.removeItem(at: temporary)
        throw PipelineError("\(option) \(path): cannot write the file (\(reason)); check the directory exists, is writable and has space")
    }
}
