// True once the app, its graph and canvas exist and the node types are registered: before that a
// workflow cannot be loaded.
() => window.app && window.app.graph && window.app.canvas && window.LiteGraph && Object.keys(LiteGraph.registered_node_types).length > 0
