import Foundation
import FunnelBase
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelReport

/// Item cohorts for the mix-versus-rate diagnosis: the cohort of each item of the log that the file
/// names, and the catalog size (the file's items).
public struct ItemCohorts: Sendable {
    public var cohorts: [Int32: String]
    public var catalogSize: Int
}

/// Reads an item attribute file: a CSV header naming `item_id` and a cohort column (`cohort`, or
/// else the other of the first two columns), then one item per record.
public func loadCohorts(path: String, log: EventLog) throws(PipelineError) -> ItemCohorts {
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
        var cohorts: [Int32: String] = [:]
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
            if let id = log.items.lookup(text(cells[itemColumn])) { cohorts[id] = text(cells[cohortColumn]) }
        }
        guard header != nil else { throw PipelineError("--items \(path): the file is empty; expected a header item_id,cohort") }
        return ItemCohorts(cohorts: cohorts, catalogSize: catalog)
    }
}

/// Runs the counting rules, the statistics and the diagnosis on a log: the report document
/// (DESIGN.md §5), with the position-bias section when the log has randomized rounds.
public func buildReport(log: EventLog, config: FunnelConfig, cohorts: ItemCohorts? = nil) throws(PipelineError) -> JSONValue {
    let attribution: Attribution
    do { attribution = try Attributor.run(log, config: config) } catch { throw .attribution(error) }
    let rerun: @Sendable (Double) -> Analysis? = { hours in
        var c = config
        c.conversionWindowHours = hours
        guard let a = try? Attributor.run(log, config: c) else { return nil }
        return Analysis(attribution: a, config: c, labels: log.labels)
    }
    let inputs = DiagnosisInputs(cohorts: cohorts?.cohorts, catalogSize: cohorts?.catalogSize ?? log.items.count, rerun: rerun)
    var doc = ReportBuilder(attribution: attribution, config: config, labels: log.labels, diagnosis: inputs).json()
    if let section = try PositionBiasReport.section(log: log, attribution: attribution, config: config),
       case .object(var members) = doc {
        members.append(("position_bias", section))
        doc = .object(members)
    }
    return doc
}

/// The whole report job: read the events and the configuration, count, analyse.
public struct ReportJob: Sendable {
    public var source: EventSource
    public var configPath: String?
    public var itemsPath: String?

    public init(source: EventSource, configPath: String? = nil, itemsPath: String? = nil) {
        self.source = source
        self.configPath = configPath
        self.itemsPath = itemsPath
    }

    public func run(onProgress: (@Sendable (Int) -> Void)? = nil) throws(PipelineError) -> JSONValue {
        let config = try loadConfig(configPath)
        let log = try readEvents(source, onProgress: onProgress)
        let cohorts = try itemsPath.map { (p) throws(PipelineError) in try loadCohorts(path: p, log: log) }
        return try buildReport(log: log, config: config, cohorts: cohorts)
    }
}
