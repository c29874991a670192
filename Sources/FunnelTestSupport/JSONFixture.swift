import Foundation

/// A JSON fixture (written by a committed script) read with accessors that throw an error naming
/// the missing or mistyped key, so a test fails with a message instead of crashing on a cast.
public struct JSONFixture: @unchecked Sendable {
    public let object: [String: Any]

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ object: [String: Any]) { self.object = object }

    /// The top-level object of a JSON file.
    public static func load(_ url: URL) throws -> JSONFixture {
        let value = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let object = value as? [String: Any] else { throw Problem(description: "\(url.path): the top level is not an object") }
        return JSONFixture(object)
    }

    func value<T>(_ key: String, as type: T.Type) throws -> T {
        guard let raw = object[key] else { throw Problem(description: "fixture: no key '\(key)'") }
        guard let v = raw as? T else { throw Problem(description: "fixture: '\(key)' is \(Swift.type(of: raw)), not \(T.self)") }
        return v
    }

    public func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }
    public subscript(key: String) -> Any? { object[key] }

    public func string(_ key: String) throws -> String { try value(key, as: String.self) }
    public func double(_ key: String) throws -> Double { try value(key, as: NSNumber.self).doubleValue }
    public func int(_ key: String) throws -> Int { try value(key, as: NSNumber.self).intValue }
    public func doubles(_ key: String) throws -> [Double] { try value(key, as: [NSNumber].self).map(\.doubleValue) }
    public func floats(_ key: String) throws -> [Float] { try value(key, as: [NSNumber].self).map { Float(truncating: $0) } }
    public func ints(_ key: String) throws -> [Int] { try value(key, as: [NSNumber].self).map(\.intValue) }
    public func rows(_ key: String) throws -> [[Double]] { try value(key, as: [[NSNumber]].self).map { $0.map(\.doubleValue) } }
    public func object(_ key: String) throws -> JSONFixture { JSONFixture(try value(key, as: [String: Any].self)) }
    public func objects(_ key: String) throws -> [JSONFixture] { try value(key, as: [[String: Any]].self).map(JSONFixture.init) }
}
