//! Meal images against real PostgreSQL and a stand-in Unsplash API: photos
//! with their attribution, the 30-day search cache across spellings, the
//! hourly window shared by workers and closed by Unsplash's 403, cached
//! "no photo" answers, download events sent once and only to the API host,
//! and an access key that no error shows.

#[path = "support/unsplash.rs"]
mod unsplash;

use chrono::{DateTime, Utc};
use plan_worker::error_code::ErrorCode;
use plan_worker::images::store::{self, Admit};
use plan_worker::images::{
    ImagesError, Photo, Tracked, Unsplash, UnsplashError, UnsplashSettings, find_photos,
    track_download,
};
use sqlx::PgPool;
use unsplash::{KEY, StandIn, photo_id};
use uuid::Uuid;

fn settings(base_url: &str, key: &str) -> UnsplashSettings {
    UnsplashSettings {
        unsplash_access_key: Some(key.into()),
        unsplash_api_url: base_url.into(),
        unsplash_app_name: "Meal Plans".into(),
        unsplash_timeout_seconds: 5.0,
        ..UnsplashSettings::default()
    }
}

/// A client of the stand-in; each call is one more "worker".
fn client(stand_in: &StandIn) -> Unsplash {
    settings(&stand_in.base_url, KEY).client().unwrap().unwrap()
}

fn dishes(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The start of the next clock hour (UTC) by the database's clock.
async fn next_hour(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("select date_trunc('hour', now(), 'UTC') + interval '1 hour'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `until` is the next clock hour (or, when the hour turned during the
/// test, the hour that just began).
async fn assert_next_hour(pool: &PgPool, until: Option<DateTime<Utc>>) {
    let next = next_hour(pool).await;
    let until = until.expect("deferred");
    assert!(
        until == next || until == next - chrono::Duration::hours(1),
        "deferred until {until}, next hour {next}"
    );
}

async fn window_closed(pool: &PgPool) -> bool {
    sqlx::query_scalar(
        "select closed from unsplash_rate_window where window_start = date_trunc('hour', now(), 'UTC')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn photos_are_found_with_their_attribution_and_both_links_carry_the_utm_parameters(
    pool: PgPool,
) {
    let stand_in = StandIn::start().await;
    let found = find_photos(
        &pool,
        &client(&stand_in),
        50,
        &dishes(&["Grilled Salmon", "Tomato Soup"]),
    )
    .await
    .unwrap();

    assert_eq!((found.searched, found.deferred_until), (2, None));
    let salmon = found.photos["Grilled Salmon"].clone().unwrap();
    assert_eq!(
        salmon,
        Photo {
            id: "ph-grilled-salmon".into(),
            url: "https://images.unsplash.test/ph-grilled-salmon?w=1080".into(),
            thumb_url: "https://images.unsplash.test/ph-grilled-salmon?w=400".into(),
            alt: "a plate of grilled salmon".into(),
            photographer: "Cook grilled-salmon".into(),
            photographer_url:
                "https://unsplash.com/@cook_grilled-salmon?utm_source=Meal+Plans&utm_medium=referral"
                    .into(),
            unsplash_url:
                "https://unsplash.com/photos/ph-grilled-salmon?utm_source=Meal+Plans&utm_medium=referral"
                    .into(),
            download_location: format!(
                "{}/photos/ph-grilled-salmon/download?ixid=test",
                stand_in.base_url
            ),
        },
        "the first result (no small size) is skipped"
    );
    let soup = found.photos["Tomato Soup"].clone().unwrap();
    assert_eq!(soup.alt, "Tomato Soup", "no alt_description: the dish name");

    // The meal's image JSON is exactly these fields.
    let json = serde_json::to_value(&salmon).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "alt",
            "download_location",
            "id",
            "photographer",
            "photographer_url",
            "thumb_url",
            "unsplash_url",
            "url"
        ]
    );
}

#[sqlx::test]
async fn a_second_find_with_the_same_dishes_spelled_differently_searches_nothing(pool: PgPool) {
    let stand_in = StandIn::start().await;
    let first = find_photos(
        &pool,
        &client(&stand_in),
        50,
        &dishes(&["Mom's Stir-Fry", "moms stir fry!"]),
    )
    .await
    .unwrap();
    assert_eq!(first.searched, 1, "one search for both spellings");
    assert_eq!(first.photos.len(), 2);
    assert_eq!(
        first.photos["Mom's Stir-Fry"],
        first.photos["moms stir fry!"]
    );

    let again = find_photos(
        &pool,
        &client(&stand_in),
        50,
        &dishes(&["  MOMS   Stir Fry ", "Mom’s stir-fry."]),
    )
    .await
    .unwrap();
    assert_eq!((again.searched, again.deferred_until), (0, None));
    assert_eq!(
        again.photos["  MOMS   Stir Fry "],
        first.photos["Mom's Stir-Fry"]
    );
    assert_eq!(
        again.photos["Mom’s stir-fry."],
        first.photos["Mom's Stir-Fry"]
    );
    assert_eq!(stand_in.total_searches(), 1);
}

#[sqlx::test]
async fn the_hourly_limit_defers_the_rest_to_the_next_hour_for_every_worker(pool: PgPool) {
    let stand_in = StandIn::start().await;
    let menu = dishes(&["Oats", "Dal", "Paneer Tikka", "Greek Salad", "Lentil Soup"]);

    let worker_a = find_photos(&pool, &client(&stand_in), 3, &menu)
        .await
        .unwrap();
    assert_eq!(worker_a.searched, 3);
    assert_eq!(worker_a.photos.len(), 3, "the first three dishes");
    assert!(worker_a.photos.values().all(Option::is_some));
    assert_next_hour(&pool, worker_a.deferred_until).await;

    // Another worker (another client, same database) finds the hour spent.
    let worker_b = find_photos(&pool, &client(&stand_in), 3, &menu)
        .await
        .unwrap();
    assert_eq!(worker_b.searched, 0);
    assert_eq!(worker_b.photos, worker_a.photos, "the cached three");
    assert_next_hour(&pool, worker_b.deferred_until).await;
    assert_eq!(stand_in.total_searches(), 3);
}

#[sqlx::test]
async fn workers_searching_at_once_never_exceed_the_hourly_limit_together(pool: PgPool) {
    let stand_in = StandIn::start().await;
    let (a, b) = (client(&stand_in), client(&stand_in));
    let menu_a = dishes(&["Oats", "Dal", "Paneer Tikka", "Greek Salad", "Lentil Soup"]);
    let menu_b = dishes(&["Tofu Bowl", "Chana Masala", "Omelette", "Poha", "Khichdi"]);

    let (found_a, found_b) = tokio::join!(
        find_photos(&pool, &a, 3, &menu_a),
        find_photos(&pool, &b, 3, &menu_b)
    );
    let (found_a, found_b) = (found_a.unwrap(), found_b.unwrap());
    assert_eq!(found_a.searched + found_b.searched, 3);
    assert_eq!(stand_in.total_searches(), 3);
    assert_next_hour(&pool, found_a.deferred_until).await;
    assert_eq!(found_a.deferred_until, found_b.deferred_until);
}

#[sqlx::test]
async fn a_403_rate_limit_closes_the_window_for_every_worker_and_defers(pool: PgPool) {
    let stand_in = StandIn::start().await;
    stand_in.set_rate_limited(true);
    let menu = dishes(&["Oats", "Dal", "Poha"]);

    let found = find_photos(&pool, &client(&stand_in), 50, &menu)
        .await
        .unwrap();
    assert_eq!(found.searched, 1, "no call after the 403");
    assert!(
        found.photos.is_empty(),
        "nothing settled: {:?}",
        found.photos
    );
    assert_next_hour(&pool, found.deferred_until).await;
    assert!(window_closed(&pool).await);

    // Unsplash would answer again, but the hour is closed for everyone.
    stand_in.set_rate_limited(false);
    let other = find_photos(&pool, &client(&stand_in), 50, &menu)
        .await
        .unwrap();
    assert_eq!((other.searched, other.photos.len()), (0, 0));
    assert_next_hour(&pool, other.deferred_until).await;
    assert_eq!(stand_in.total_searches(), 1);
}

#[sqlx::test]
async fn the_hours_last_request_is_used_and_closes_the_window(pool: PgPool) {
    let stand_in = StandIn::start().await;
    stand_in.set_remaining(1);

    let found = find_photos(&pool, &client(&stand_in), 50, &dishes(&["Oats"]))
        .await
        .unwrap();
    assert!(found.photos["Oats"].is_some(), "the answer is used");
    assert_eq!(found.deferred_until, None, "nothing was left to defer");
    assert!(window_closed(&pool).await);

    let more = find_photos(&pool, &client(&stand_in), 50, &dishes(&["Dal", "Poha"]))
        .await
        .unwrap();
    assert_eq!(more.searched, 0);
    assert_next_hour(&pool, more.deferred_until).await;
    assert_eq!(stand_in.total_searches(), 1);
}

#[sqlx::test]
async fn a_dish_without_results_is_cached_as_none_and_not_searched_again(pool: PgPool) {
    let stand_in = StandIn::start().await;
    stand_in.set_empty("plain water");

    for searched in [1, 0] {
        let found = find_photos(&pool, &client(&stand_in), 50, &dishes(&["Plain Water"]))
            .await
            .unwrap();
        assert_eq!(found.searched, searched);
        assert_eq!(found.photos.get("Plain Water"), Some(&None));
    }
    assert_eq!(stand_in.searches("plain water"), 1);
    let photo: Option<serde_json::Value> = sqlx::query_scalar(
        "select photo from unsplash_search_cache where query_key = 'plain water'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(photo, None);
}

#[sqlx::test]
async fn a_failed_search_leaves_its_dish_out_and_the_others_go_on(pool: PgPool) {
    let stand_in = StandIn::start().await;
    stand_in.set_failing("burnt toast");

    let found = find_photos(
        &pool,
        &client(&stand_in),
        50,
        &dishes(&["Burnt Toast", "Oats"]),
    )
    .await
    .unwrap();
    assert_eq!(found.searched, 2);
    assert!(!found.photos.contains_key("Burnt Toast"), "not settled");
    assert!(found.photos["Oats"].is_some());

    // Not cached: searched again, and a find whose every search failed fails.
    let err = find_photos(&pool, &client(&stand_in), 50, &dishes(&["Burnt Toast"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImagesError::SearchesFailed {
                failed: 1,
                last: UnsplashError::Status(500)
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::NetworkError);
    assert!(err.code().is_retryable());
    assert_eq!(stand_in.searches("burnt toast"), 2);
}

#[sqlx::test]
async fn download_events_go_only_to_the_api_host_and_once_per_plan_and_photo(pool: PgPool) {
    let stand_in = StandIn::start().await;
    let unsplash = client(&stand_in);
    let found = find_photos(&pool, &unsplash, 50, &dishes(&["Oats"]))
        .await
        .unwrap();
    let photo = found.photos["Oats"].clone().unwrap();

    let port = stand_in.base_url.rsplit(':').next().unwrap();
    let other_port = if port == "1" { "2" } else { "1" };
    for foreign in [
        "https://evil.example/photos/ph-oats/download".to_owned(),
        format!("http://127.0.0.1:{other_port}/photos/ph-oats/download"),
        format!("https://127.0.0.1:{port}/photos/ph-oats/download"),
        "not a url".to_owned(),
    ] {
        let err = unsplash.track_download(&foreign).await.unwrap_err();
        assert!(
            matches!(err, UnsplashError::ForeignUrl(_)),
            "{foreign}: {err}"
        );
    }
    let foreign_photo = Photo {
        download_location: "https://evil.example/photos/ph-oats/download".into(),
        ..photo.clone()
    };
    let plan = Uuid::new_v4();
    let refused = track_download(&pool, &unsplash, 50, plan, &foreign_photo).await;
    assert_eq!(refused.unwrap(), Tracked::Refused);
    let calls: i32 = sqlx::query_scalar("select calls from unsplash_rate_window")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        calls, 1,
        "the search's request only: a refused URL spends none"
    );
    assert_eq!(stand_in.downloads(&photo_id("oats")), 0);

    let first = track_download(&pool, &unsplash, 50, plan, &photo)
        .await
        .unwrap();
    let again = track_download(&pool, &unsplash, 50, plan, &photo)
        .await
        .unwrap();
    assert_eq!((first, again), (Tracked::Sent, Tracked::AlreadySent));
    assert_eq!(stand_in.downloads("ph-oats"), 1);
}

#[sqlx::test]
async fn a_failed_download_event_is_sent_by_a_later_attempt(pool: PgPool) {
    let stand_in = StandIn::start().await;
    let unsplash = client(&stand_in);
    let found = find_photos(&pool, &unsplash, 50, &dishes(&["Oats"]))
        .await
        .unwrap();
    let photo = found.photos["Oats"].clone().unwrap();
    let plan = Uuid::new_v4();

    stand_in.set_rate_limited(true);
    let deferred = track_download(&pool, &unsplash, 50, plan, &photo)
        .await
        .unwrap();
    let Tracked::Deferred(until) = deferred else {
        panic!("{deferred:?}");
    };
    assert_next_hour(&pool, Some(until)).await;
    assert!(window_closed(&pool).await);

    // Next hour (a new window), the mark is free again.
    stand_in.set_rate_limited(false);
    sqlx::query("delete from unsplash_rate_window")
        .execute(&pool)
        .await
        .unwrap();
    let sent = track_download(&pool, &unsplash, 50, plan, &photo)
        .await
        .unwrap();
    assert_eq!(sent, Tracked::Sent);
    assert_eq!(stand_in.downloads("ph-oats"), 1);
}

#[sqlx::test]
async fn the_access_key_appears_in_no_error_and_a_refused_key_stops_the_searches(pool: PgPool) {
    let stand_in = StandIn::start().await;
    let wrong_key = "wrong-key-e1f2d3";
    let refused = settings(&stand_in.base_url, wrong_key)
        .client()
        .unwrap()
        .unwrap();
    let err = refused.search("Oats").await.unwrap_err();
    assert_eq!(err, UnsplashError::Status(401));
    assert!(err.is_permanent());

    let err = find_photos(&pool, &refused, 50, &dishes(&["Oats", "Dal", "Poha"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigError);
    assert!(!err.to_string().contains(wrong_key), "{err}");
    assert_eq!(
        stand_in.total_searches(),
        0,
        "401s are not counted as searches"
    );
    let used: i32 = sqlx::query_scalar("select calls from unsplash_rate_window")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(used, 1, "one request, then no more with a refused key");

    // A body quoting the header, and a dead host.
    stand_in.set_echo_key(true);
    let decode = client(&stand_in).search("Oats").await.unwrap_err();
    assert!(matches!(decode, UnsplashError::Decode(_)), "{decode}");
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let transport = settings(&dead, KEY)
        .client()
        .unwrap()
        .unwrap()
        .search("Oats")
        .await
        .unwrap_err();
    assert!(
        matches!(transport, UnsplashError::Transport(_)),
        "{transport}"
    );

    for shown in [
        decode.to_string(),
        format!("{decode:?}"),
        transport.to_string(),
        format!("{transport:?}"),
        format!("{:?}", client(&stand_in)),
        format!("{:?}", settings(&stand_in.base_url, KEY)),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
    }
}

#[sqlx::test]
async fn the_window_admits_its_limit_then_waits_for_the_next_hour_and_drops_old_windows(
    pool: PgPool,
) {
    sqlx::query(
        "insert into unsplash_rate_window (window_start, calls)
         values (date_trunc('hour', now(), 'UTC') - interval '2 days', 50)",
    )
    .execute(&pool)
    .await
    .unwrap();

    let first = store::take_call(&pool, 2).await.unwrap();
    let Admit::Admitted { window } = first else {
        panic!("{first:?}");
    };
    assert_next_hour(&pool, Some(window + chrono::Duration::hours(1))).await;
    assert!(matches!(
        store::take_call(&pool, 2).await.unwrap(),
        Admit::Admitted { .. }
    ));
    let third = store::take_call(&pool, 2).await.unwrap();
    assert_eq!(third, Admit::Wait(window + chrono::Duration::hours(1)));
    let windows: i64 = sqlx::query_scalar("select count(*) from unsplash_rate_window")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(windows, 1, "the window of two days ago is gone");

    // A closed window admits nothing even under a higher limit.
    store::close_window(&pool, window).await.unwrap();
    assert!(matches!(
        store::take_call(&pool, 50).await.unwrap(),
        Admit::Wait(_)
    ));

    let plan = Uuid::new_v4();
    assert!(store::mark_download(&pool, plan, "ph-oats").await.unwrap());
    assert!(!store::mark_download(&pool, plan, "ph-oats").await.unwrap());
    assert!(
        store::mark_download(&pool, Uuid::new_v4(), "ph-oats")
            .await
            .unwrap()
    );
}
