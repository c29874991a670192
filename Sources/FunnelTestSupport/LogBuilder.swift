import Foundation
import FunnelAttribution
import FunnelConfig
import FunnelEvents

/// Builds small event logs; times are seconds after 2026-03-01T00:00:00Z.
public struct LogBuilder {
    public var lines: [String] = []
    var n = 0
    public let base: Int64 = 1_772_323_200_000

    public init() {}

    public mutating func id(_ prefix: String) -> String { n += 1; return "\(prefix)\(n)" }

    public mutating func exposure(_ user: String, _ t: Double, variant: String = "control", experiment: String = "exp", context: String = #"{"device":"mobile"}"#) {
        lines.append(#"{"type":"exposure","event_id":"\#(id("x"))","ts":\#(ms(t)),"user_id":"\#(user)","experiment":"\#(experiment)","variant":"\#(variant)","context":\#(context)}"#)
    }

    @discardableResult
    public mutating func impression(_ user: String, _ t: Double, item: String = "a", position: Int = 1, surface: String = "home",
                             extra: String = "") -> String {
        let i = id("i")
        lines.append(#"{"type":"impression","event_id":"\#(i)","ts":\#(ms(t)),"user_id":"\#(user)","item_id":"\#(item)","position":\#(position),"surface":"\#(surface)"\#(extra)}"#)
        return i
    }

    public mutating func click(_ user: String, _ t: Double, on impression: String, bot: Bool = false) {
        lines.append(#"{"type":"click","event_id":"\#(id("c"))","ts":\#(ms(t)),"user_id":"\#(user)","impression_id":"\#(impression)"\#(bot ? #","bot":true"# : "")}"#)
    }

    public mutating func cart(_ user: String, _ t: Double, item: String = "a") {
        lines.append(#"{"type":"add_to_cart","event_id":"\#(id("k"))","ts":\#(ms(t)),"user_id":"\#(user)","item_id":"\#(item)"}"#)
    }

    public mutating func purchase(_ user: String, _ t: Double, items: [(String, Int, Double)], order: String? = nil) {
        let lines = items.map { #"{"item_id":"\#($0.0)","quantity":\#($0.1),"price":\#($0.2)}"# }.joined(separator: ",")
        let o = order ?? id("o")
        self.lines.append(#"{"type":"purchase","event_id":"\#(id("p"))","ts":\#(ms(t)),"user_id":"\#(user)","order_id":"\#(o)","items":[\#(lines)]}"#)
    }

    public func ms(_ seconds: Double) -> Int64 { base + Int64((seconds * 1000).rounded()) }

    public func run(_ config: FunnelConfig = FunnelConfig()) throws -> Attribution {
        let log = try EventReader.read(text: lines.joined(separator: "\n"))
        return try Attributor.run(log, config: config)
    }
}

extension Attribution {
    /// The counts of one variant (empty when the log has no such variant).
    public func counts(_ variant: String) -> GroupCounts {
        guard let v = variants.firstIndex(of: variant) else { return GroupCounts() }
        return counts()[v]
    }
}

