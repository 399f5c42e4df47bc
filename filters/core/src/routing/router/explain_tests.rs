use super::*;
use crate::config::{Backend, HeaderMatch, Route, StringMatch, VirtualHost, WildcardMode};

#[test]
fn explains_every_route_tried() {
    let mut c = RoutingConfig::empty("t");
    c.backends.insert(
        "a".into(),
        Backend {
            cluster: "c".into(),
            endpoints: vec![],
            lb: Default::default(),
            original_destination: false,
        },
    );
    let route = |name: &str, path: PathMatch, headers: Vec<HeaderMatch>| Route {
        headers,
        ..Route::new(name, path, RouteAction::to("a"))
    };
    c.virtual_hosts = vec![VirtualHost {
        name: "v".into(),
        hosts: vec!["*.example.com".into()],
        wildcard: WildcardMode::MultiLabel,
        order: RouteOrder::Listed,
        routes: vec![
            route("exact", PathMatch::Exact("/x".into()), vec![]),
            route(
                "hdr",
                PathMatch::Prefix("/".into()),
                vec![HeaderMatch {
                    name: "v".into(),
                    value: StringMatch::Exact("2".into()),
                    invert: false,
                }],
            ),
            route("all", PathMatch::Prefix("/".into()), vec![]),
        ],
        default_backend: None,
    }];
    let router = Router::try_from(c).unwrap();
    let (d, trace) = router.decide_path_explained("a.example.com", "/y");
    assert_eq!(d, Decision::Route { vhost: 0, route: 2 });
    assert_eq!(trace[2], "route 0 exact: path does not match exact \"/x\"");
    assert_eq!(trace[3], "route 1 hdr: header v does not match exact \"2\"");
    assert_eq!(trace[4], "route 2 all: matches");
    assert!(
        trace[5].starts_with("decision: all") && trace[5].ends_with("forward to a (weight 1)"),
        "{}",
        trace[5]
    );
    let (_, trace) = router.decide_path_explained("example.com", "/");
    assert_eq!(trace[1], "no virtual host takes this host");
}
