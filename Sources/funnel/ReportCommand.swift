import ArgumentParser
import Foundation
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelReport

enum ReportFormat: String, ExpressibleByArgument, CaseIterable { case text, json, html }

/// Shared input options.
struct InputOptions: ParsableArguments {
    @Option(name: .long, help: "Event file (JSON Lines or CSV, optionally gzip), a directory of them, or - for standard input. Repeatable.")
    var events: [String] = []

    @Option(name: .long, help: "Input format: auto (by extension, else sniffed), jsonl or csv.")
    var inputFormat: String = "auto"

    @Option(name: .long, help: "Write every rejected line here as JSON Lines (file, line, reason, field, message, raw).")
    var quarantine: String?

    func validate() throws {
        if events.isEmpty { throw ValidationError("--events is required: pass an event file, a directory, or - for standard input") }
        if InputFormat(rawValue: inputFormat) == nil { throw ValidationError("--input-format must be auto, jsonl or csv (got '\(inputFormat)')") }
    }
}

/// Streams quarantine rows to a file.
final class QuarantineFile: @unchecked Sendable {
    let handle: FileHandle?
    var buffer = Data()
    init(path: String?) throws {
        guard let path else { handle = nil; return }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw ValidationError("--quarantine \(path): cannot create the file; check the directory exists and is writable")
        }
        handle = h
    }
    func write(_ row: QuarantineRow) {
        guard handle != nil else { return }
        buffer.append(contentsOf: Array((row.jsonLine() + "\n").utf8))
        if buffer.count > 1 << 20 { flush() }
    }
    func flush() {
        handle?.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

func readEvents(_ input: InputOptions, onQuarantine: QuarantineHandler? = nil) throws -> EventLog {
    try readEvents(paths: input.events, format: InputFormat(rawValue: input.inputFormat) ?? .auto,
                   quarantine: input.quarantine, onQuarantine: onQuarantine)
}

func readEvents(paths: [String], format: InputFormat, quarantine: String?, onQuarantine: QuarantineHandler? = nil) throws -> EventLog {
    let file = try QuarantineFile(path: quarantine)
    defer { file.flush() }
    let progress = isatty(2) != 0 ? ProgressBar(paths: paths) : nil
    defer { progress?.finish() }
    var onProgress: (@Sendable (Int) -> Void)? = nil
    if let progress { onProgress = { bytes in progress.update(bytes) } }
    do throws(InputError) {
        var log = try EventReader.read(paths: paths, format: format, onProgress: onProgress) { row in
            file.write(row)
            onQuarantine?(row)
        }
        log.dropIDStrings()
        return log
    } catch {
        throw CLIError(error.description)
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func loadConfig(_ path: String?) throws -> FunnelConfig {
    guard let path else { return FunnelConfig() }
    do { return try FunnelConfig.load(path: path) } catch { throw CLIError("configuration error: \(error.description)") }
}

/// Reads an item attribute file: a CSV header naming `item_id` and a cohort column (`cohort`, or
/// else the second column), one item per line.
func loadCohorts(_ path: String?, log: EventLog) throws -> (cohorts: [Int32: String]?, catalog: Int) {
    guard let path else { return (nil, log.items.count) }
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CLIError("--items \(path): cannot read the file; pass a CSV with columns item_id,cohort")
    }
    var lines = text.split(whereSeparator: \.isNewline).map(String.init)
    guard !lines.isEmpty else { throw CLIError("--items \(path): the file is empty; expected a header item_id,cohort") }
    let header = lines.removeFirst().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard let itemColumn = header.firstIndex(of: "item_id"), header.count >= 2 else {
        throw CLIError("--items \(path): line 1: the header must name item_id and a cohort column (e.g. item_id,cohort)")
    }
    let cohortColumn = header.firstIndex(of: "cohort") ?? (itemColumn == 0 ? 1 : 0)
    var cohorts: [Int32: String] = [:]
    for (k, line) in lines.enumerated() where !line.isEmpty {
        let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard cells.count > max(itemColumn, cohortColumn) else {
            throw CLIError("--items \(path): line \(k + 2): expected \(header.count) cells, found \(cells.count)")
        }
        if let id = log.items.lookup(cells[itemColumn]) { cohorts[id] = cells[cohortColumn] }
    }
    return (cohorts, lines.count)
}

/// Runs the counting rules, the statistics and the diagnosis.
func buildReport(log: EventLog, config: FunnelConfig, itemsFile: String? = nil) throws -> JSONValue {
    let (cohorts, catalog) = try loadCohorts(itemsFile, log: log)
    do {
        let attribution = try Attributor.run(log, config: config)
        let rerun: @Sendable (Double) -> Analysis? = { hours in
            var c = config
            c.conversionWindowHours = hours
            guard let a = try? Attributor.run(log, config: c) else { return nil }
            return Analysis(attribution: a, config: c, labels: log.labels)
        }
        let inputs = DiagnosisInputs(cohorts: cohorts, catalogSize: catalog, rerun: rerun)
        var doc = ReportBuilder(attribution: attribution, config: config, labels: log.labels, diagnosis: inputs).json()
        if let section = try PositionBiasReport.section(log: log, attribution: attribution, config: config),
           case .object(var members) = doc {
            members.append(("position_bias", section))
            doc = .object(members)
        }
        return doc
    } catch {
        throw CLIError("\(error)")
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Count the funnel of an experiment and report it.")

    @OptionGroup var input: InputOptions

    @Option(name: .long, help: "funnel.yaml with counting rules and A/B settings (defaults: DESIGN.md §3).")
    var config: String?

    @Option(name: .long, help: "Output format: text (tables), json (DESIGN.md §5) or html (one self-contained file with charts).")
    var format: ReportFormat = .text

    @Option(name: .long, help: "Item attribute CSV (item_id,cohort) for the mix-versus-rate diagnosis; default: deciles of pooled post-click conversion.")
    var items: String?

    @Option(name: .long, help: "Write the report to this file instead of standard output.")
    var output: String?

    func run() throws {
        let cfg = try loadConfig(config)
        let log = try readEvents(input)
        let doc = try buildReport(log: log, config: cfg, itemsFile: items)
        let text: String
        switch format {
        case .json: text = doc.serialized(pretty: true) + "\n"
        case .text: text = TextReport.render(doc, color: output == nil && isatty(1) != 0)
        case .html: text = HTMLReport.render(doc)
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                throw CLIError("--output \(output): cannot write the file; check the directory exists and is writable")
            }
        } else {
            print(text, terminator: "")
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check event files: counts of rejected lines by reason and the first examples of each. Exits 1 when anything was quarantined.")

    @OptionGroup var input: InputOptions

    @Option(name: .long, help: "Examples to show per reason.")
    var examples: Int = 3

    func run() throws {
        let examples = ExampleCollector(limit: self.examples)
        let log = try readEvents(input) { examples.add($0) }
        let c = log.counters
        print("events read:        \(c.eventsRead)")
        print("accepted:           \(log.events.count)")
        print("duplicate events:   \(c.duplicateEvents)")
        print("quarantined:        \(c.quarantinedTotal)")
        for reason in QuarantineReason.allCases {
            print("  \(reason.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0))\(c.quarantined[reason] ?? 0)")
        }
        for reason in QuarantineReason.allCases {
            guard let rows = examples.rows[reason], !rows.isEmpty else { continue }
            print("\nexamples of \(reason.rawValue):")
            for r in rows {
                let raw = String(decoding: r.raw.prefix(160), as: UTF8.self)
                print("  \(r.file):\(r.line): \(r.rejection.field.map { "[\($0)] " } ?? "")\(r.rejection.message)")
                print("    \(raw)\(r.raw.count > 160 ? "…" : "")")
            }
        }
        if c.quarantinedTotal > 0 { throw ExitCode(1) }
    }
}

final class ExampleCollector: @unchecked Sendable {
    let limit: Int
    var rows: [QuarantineReason: [QuarantineRow]] = [:]
    init(limit: Int) { self.limit = limit }
    func add(_ row: QuarantineRow) {
        if rows[row.rejection.reason, default: []].count < limit { rows[row.rejection.reason, default: []].append(row) }
    }
}

/// A one-line progress bar on standard error (only used when it is a terminal).
final class ProgressBar: @unchecked Sendable {
    let total: Int
    var last = -1
    init(paths: [String]) {
        total = paths.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
    }
    func update(_ bytes: Int) {
        guard total > 1 << 24 else { return }
        let pct = min(100, bytes * 100 / max(total, 1))
        if pct == last { return }
        last = pct
        let width = 30
        let filled = pct * width / 100
        FileHandle.standardError.write(Data("\rreading [\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(pct) %".utf8))
    }
    func finish() { if last >= 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
