/// One accepted, non-duplicate event in compact form (56 bytes): every string is an id into a
/// `StringTable` of its `EventLog` (absent = -1). Its `event_id` is not kept: `EventLog.eventIndexByID`
/// maps ids to events.
public struct Event: Sendable {
    public var ts: Int64
    public var user: Int32
    /// Item (impression, add_to_cart); -1 otherwise.
    public var item: Int32
    /// `impression_id` (click, add_to_cart), an id of `EventLog.ids`; -1 when absent.
    public var ref: Int32
    /// Label ids (`EventLog.labels`); -1 when absent.
    public var experiment: Int32
    public var variant: Int32
    public var surface: Int32
    public var position: Int32
    public var quantity: Int32
    /// `order_id` (purchase), an id of `EventLog.orders`.
    public var order: Int32
    /// Exposure: start in `contextPairs`; purchase: start in `lines`; impression: index in `viewability` or -1.
    public var extra: Int32
    /// Exposure: context pairs; purchase: lines; impression: 1 + index in `logged` (0: no propensity).
    public var extraCount: Int32
    public var type: EventType
    public var bot: Bool
}

/// A purchase item line.
public struct PurchaseLine: Sendable {
    public var item: Int32
    public var quantity: Int32
    public var price: Double
}

/// Counters of what happened to the lines read (DESIGN.md §5 `data_quality`, reader part).
public struct ReadCounters: Sendable, Equatable {
    /// Every non-blank line read, quarantined and duplicate lines included.
    public var eventsRead = 0
    public var quarantined: [QuarantineReason: Int] = Dictionary(uniqueKeysWithValues: QuarantineReason.allCases.map { ($0, 0) })
    public var duplicateEvents = 0
    public init() {}
    public var quarantinedTotal: Int { quarantined.values.reduce(0, +) }

    /// Adds another reader's counters.
    public mutating func add(_ other: ReadCounters) {
        eventsRead += other.eventsRead
        duplicateEvents += other.duplicateEvents
        for (reason, n) in other.quarantined { quarantined[reason, default: 0] += n }
    }
}

/// Accepted events in input order, with their string tables.
public struct EventLog: Sendable {
    public var events: [Event] = []
    /// `event_id` and `impression_id` strings.
    public var ids = StringTable(capacity: 1 << 16)
    public var users = StringTable(capacity: 1 << 12)
    public var items = StringTable(capacity: 1 << 12)
    public var orders = StringTable(capacity: 1 << 12)
    /// Experiments, variants, surfaces, context keys and values.
    public var labels: StringTable
    public var contextPairs: [(key: Int32, value: Int32)] = []
    /// Impressions that carry a `context`: event index → (start, count) in `contextPairs`.
    public var impressionContexts: [Int32: (start: Int32, count: Int32)] = [:]
    public var lines: [PurchaseLine] = []
    /// (viewable_fraction, viewable_ms) of impressions that carry both.
    public var viewability: [(fraction: Double, ms: Double)] = []
    /// Impressions that carry the logging policy's `propensity`: it and the request id (`requests`, -1 when absent).
    public var logged: [(propensity: Double, request: Int32)] = []
    /// `request_id` strings of impressions that carry a propensity.
    public var requests = StringTable(capacity: 16)
    public var counters = ReadCounters()
    /// Label id of the default surface, `"default"`.
    public let defaultSurface: Int32
    /// Event index by event id (`ids`), -1 for ids that name no accepted event: the first user's
    /// event of that id.
    public var eventIndexByID: [Int32] = []
    /// Events whose id an earlier event of another user already holds (ids are unique within a
    /// user, DESIGN.md §7): (user << 32 | id) → event index. Empty on logs whose ids are unique.
    public var sharedIDs: [UInt64: Int32] = [:]

    public init() {
        var labels = StringTable(capacity: 64)
        defaultSurface = labels.intern("default")
        self.labels = labels
    }

    /// Reserves room for about `events` events so that growing the log never copies it (pages
    /// reserved but never written cost no memory).
    public mutating func reserve(events: Int) {
        self.events.reserveCapacity(events)
        eventIndexByID.reserveCapacity(events)
        ids.reserve(strings: events, bytes: events * 12)
        users.reserve(strings: events / 4, bytes: events * 3)
    }

    /// Frees the `event_id` / `impression_id` strings once reading is over: counting needs only
    /// `eventIndexByID` (about 30 bytes an event saved). Reading more events into this log after
    /// this call is an error.
    public mutating func dropIDStrings() {
        ids = StringTable(capacity: 16)
    }

    /// The context (key, value) label pairs of an exposure.
    public func context(of e: Event) -> ArraySlice<(key: Int32, value: Int32)> {
        guard e.type == .exposure else { return [] }
        return contextPairs[Int(e.extra)..<Int(e.extra + e.extraCount)]
    }

    /// The context (key, value) label pairs of the impression at `index` in `events` (empty when it has none).
    public func impressionContext(at index: Int) -> ArraySlice<(key: Int32, value: Int32)> {
        guard let r = impressionContexts[Int32(index)] else { return [] }
        return contextPairs[Int(r.start)..<Int(r.start + r.count)]
    }

    /// The item lines of a purchase.
    public func purchaseLines(of e: Event) -> ArraySlice<PurchaseLine> {
        guard e.type == .purchase else { return [] }
        return lines[Int(e.extra)..<Int(e.extra + e.extraCount)]
    }

    /// The event of `user` with id `id` (`ids`), or -1.
    @inline(__always) public func eventIndex(id: Int32, user: Int32) -> Int32 {
        guard id >= 0, Int(id) < eventIndexByID.count else { return -1 }
        let first = eventIndexByID[Int(id)]
        if first < 0 || events[Int(first)].user == user { return first }
        return sharedIDs.isEmpty ? -1 : sharedIDs[UInt64(UInt32(bitPattern: user)) << 32 | UInt64(UInt32(bitPattern: id))] ?? -1
    }

    /// Adds one parsed event (strings in `arena`); returns false when its user already has an
    /// event of its `event_id` (the duplicate is counted and dropped, DESIGN.md §3 rule 1 and §7:
    /// duplicates are by `event_id` within a user).
    @discardableResult
    public mutating func append(_ p: ParsedEvent, arena: ParseArena) -> Bool {
        let eventID = Self.intern(&ids, p.eventID, arena)
        let user = Self.intern(&users, p.user, arena)
        let index = Int(eventID)
        if index < eventIndexByID.count {
            let first = eventIndexByID[index]
            if first >= 0 {
                if events[Int(first)].user == user { counters.duplicateEvents += 1; return false }
                let key = UInt64(UInt32(bitPattern: user)) << 32 | UInt64(UInt32(bitPattern: eventID))
                if sharedIDs[key] != nil { counters.duplicateEvents += 1; return false }
                sharedIDs[key] = Int32(events.count)
            } else {
                eventIndexByID[index] = Int32(events.count)
            }
        } else {
            eventIndexByID.append(contentsOf: repeatElement(-1, count: index + 1 - eventIndexByID.count))
            eventIndexByID[index] = Int32(events.count)
        }
        var e = Event(ts: p.ts, user: user, item: -1, ref: -1,
                      experiment: -1, variant: -1, surface: -1, position: p.position, quantity: p.quantity,
                      order: -1, extra: -1, extraCount: 0, type: p.type, bot: p.bot)
        if !p.item.isNone { e.item = Self.intern(&items, p.item, arena) }
        if !p.experiment.isNone { e.experiment = Self.intern(&labels, p.experiment, arena) }
        if !p.variant.isNone { e.variant = Self.intern(&labels, p.variant, arena) }
        if !p.impressionID.isNone {
            e.ref = Self.intern(&ids, p.impressionID, arena)
            if Int(e.ref) >= eventIndexByID.count {
                eventIndexByID.append(contentsOf: repeatElement(-1, count: Int(e.ref) + 1 - eventIndexByID.count))
            }
        }
        switch p.type {
        case .impression:
            e.surface = p.surface.isNone ? defaultSurface : Self.intern(&labels, p.surface, arena)
            if let v = p.viewable {
                e.extra = Int32(viewability.count)
                viewability.append((v.fraction, v.ms))
            }
            if p.contextCount > 0 {
                impressionContexts[Int32(events.count)] = (Int32(contextPairs.count), p.contextCount)
                for k in Int(p.contextStart)..<Int(p.contextStart + p.contextCount) {
                    let pair = arena.contextPairs[k]
                    contextPairs.append((Self.intern(&labels, pair.key, arena), Self.intern(&labels, pair.value, arena)))
                }
            }
            if let propensity = p.propensity {
                let request = p.request.isNone ? -1 : Self.intern(&requests, p.request, arena)
                logged.append((propensity, request))
                e.extraCount = Int32(logged.count)
            }
        case .exposure:
            e.extra = Int32(contextPairs.count)
            e.extraCount = p.contextCount
            for k in Int(p.contextStart)..<Int(p.contextStart + p.contextCount) {
                let pair = arena.contextPairs[k]
                contextPairs.append((Self.intern(&labels, pair.key, arena), Self.intern(&labels, pair.value, arena)))
            }
        case .purchase:
            e.order = Self.intern(&orders, p.order, arena)
            e.extra = Int32(lines.count)
            e.extraCount = p.linesCount
            for k in Int(p.linesStart)..<Int(p.linesStart + p.linesCount) {
                let line = arena.lines[k]
                lines.append(PurchaseLine(item: Self.intern(&items, line.item, arena), quantity: line.quantity, price: line.price))
            }
        default:
            break
        }
        events.append(e)
        return true
    }

    @inline(__always)
    static func intern(_ table: inout StringTable, _ ref: StringRef, _ arena: ParseArena) -> Int32 {
        arena.bytes.withUnsafeBufferPointer { all in
            table.intern(UnsafeBufferPointer(rebasing: all[Int(ref.offset)..<Int(ref.offset + ref.length)]), hash: ref.hash).id
        }
    }
}
