//! The in-process fan-out: per topic, the recent history and the connections subscribed.
//!
//! `publish` hands each message to every subscriber's bounded queue with `try_send`: a full
//! queue marks that connection slow (its task closes it) and drops it from every topic, so one
//! slow reader never holds up the publisher or anyone else. The history (the last
//! `HISTORY_PER_TOPIC` messages of each topic, contiguous in seq) lets a client that
//! reconnects with `fromSeq` get exactly what it missed.
//!
//! Memory is bounded whatever the traffic: a private topic (one user's orders, fills, ...) is
//! held only while someone is subscribed to it, so users who trade without listening cost
//! nothing here; and all histories together hold at most `history_bytes_max` bytes of
//! messages (`STREAM_HISTORY_MAX_BYTES`), the oldest evicted first across topics (a client
//! resuming from an evicted seq gets a snapshot instead). [`Hub::size`] reports both for
//! `/metrics`. Must never block (one short mutex section per batch, no awaits) or hand a
//! subscriber a message out of order.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};

use super::{Message, Topic};

/// Messages kept per topic for resuming clients...
pub const HISTORY_PER_TOPIC: usize = 512;
/// ...and at most this many bytes of them (a delta of a whole book can be kilobytes).
pub const HISTORY_BYTES_PER_TOPIC: usize = 256 * 1024;
/// All topics' histories together, by default (`STREAM_HISTORY_MAX_BYTES`).
pub const HISTORY_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// What a connection shares with the hub: its queue and the flag that cuts it off.
#[derive(Clone)]
pub struct Subscriber {
    id: u64,
    queue: mpsc::Sender<Arc<Message>>,
    slow: Arc<SlowFlag>,
}

/// Set once when a connection's queue overflowed.
#[derive(Default)]
pub struct SlowFlag {
    set: AtomicBool,
    notify: Notify,
}

impl SlowFlag {
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    fn set(&self) {
        self.set.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

impl Subscriber {
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The connection's side: receives its messages; `slow` says when it was cut off.
pub struct Inbox {
    pub messages: mpsc::Receiver<Arc<Message>>,
    pub slow: Arc<SlowFlag>,
}

/// What `subscribe` found for a client resuming from `fromSeq`.
#[derive(Debug)]
pub enum Resume {
    /// Exactly the messages after `fromSeq` (possibly none): send them, no snapshot needed.
    Replay(Vec<Arc<Message>>),
    /// The history does not reach back that far (or the client asked for no resume).
    Snapshot,
}

#[derive(Default)]
struct TopicState {
    /// The seq of the last message published on the topic, once one has been seen.
    last_seq: Option<u64>,
    history: VecDeque<Arc<Message>>,
    history_bytes: usize,
    subscribers: Vec<Subscriber>,
}

impl TopicState {
    /// Appends `message`; the bytes its history grew (or shrank) by.
    fn remember(&mut self, message: &Arc<Message>) -> isize {
        let before = self.history_bytes;
        if self.last_seq.is_some_and(|last| message.seq != last + 1) {
            // A gap (messages lost on the way from the primary): the history can no longer
            // prove continuity, so it restarts here; subscribers see the gap and resync.
            self.history.clear();
            self.history_bytes = 0;
        }
        self.last_seq = Some(message.seq);
        self.history.push_back(message.clone());
        self.history_bytes += message.text.len();
        while self.history.len() > HISTORY_PER_TOPIC
            || (self.history_bytes > HISTORY_BYTES_PER_TOPIC && self.history.len() > 1)
        {
            self.evict_oldest();
        }
        self.history_bytes as isize - before as isize
    }

    /// Drops the oldest message kept; the bytes freed.
    fn evict_oldest(&mut self) -> usize {
        let Some(evicted) = self.history.pop_front() else {
            return 0;
        };
        self.history_bytes -= evicted.text.len();
        evicted.text.len()
    }
}

struct State {
    topics: HashMap<Topic, TopicState>,
    next_id: u64,
    /// Every kept message's topic and seq, oldest first: where to evict from when the whole
    /// hub is over its bound (entries already evicted by their topic are skipped).
    kept: VecDeque<(Topic, u64)>,
    history_bytes: usize,
    history_bytes_max: usize,
}

impl State {
    /// Evicts the oldest messages across all topics until the histories fit the bound.
    fn fit(&mut self) {
        while self.history_bytes > self.history_bytes_max {
            let Some((topic, seq)) = self.kept.pop_front() else {
                return;
            };
            let Some(entry) = self.topics.get_mut(&topic) else {
                continue;
            };
            if entry
                .history
                .front()
                .is_some_and(|oldest| oldest.seq == seq)
            {
                self.history_bytes -= entry.evict_oldest();
            }
        }
        // The index only ever needs entries for what is still kept.
        if self.kept.len() > 2 * HISTORY_PER_TOPIC * self.topics.len().max(1) {
            let topics = &self.topics;
            self.kept.retain(|(topic, seq)| {
                topics
                    .get(topic)
                    .and_then(|entry| entry.history.front())
                    .is_some_and(|oldest| oldest.seq <= *seq)
            });
        }
    }

    /// Forgets a private topic nobody listens to: its state goes with its last subscriber.
    fn forget_if_idle(&mut self, topic: Topic) {
        if !topic.is_private() {
            return;
        }
        if let Some(entry) = self.topics.get(&topic) {
            if entry.subscribers.is_empty() {
                self.history_bytes -= entry.history_bytes;
                self.topics.remove(&topic);
            }
        }
    }
}

pub struct Hub {
    state: Mutex<State>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new(HISTORY_BYTES_DEFAULT)
    }
}

impl Hub {
    /// A hub whose histories hold at most `history_bytes_max` bytes together.
    pub fn new(history_bytes_max: usize) -> Hub {
        Hub {
            state: Mutex::new(State {
                topics: HashMap::new(),
                next_id: 0,
                kept: VecDeque::new(),
                history_bytes: 0,
                history_bytes_max,
            }),
        }
    }

    /// Topics held and bytes of history kept (for `/metrics`).
    pub fn size(&self) -> (usize, usize) {
        let state = self.lock();
        (state.topics.len(), state.history_bytes)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing every stream, so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection's inbox, with room for `queue_max` messages.
    pub fn connect(&self, queue_max: usize) -> (Subscriber, Inbox) {
        let (queue, messages) = mpsc::channel(queue_max.max(1));
        let slow = Arc::new(SlowFlag::default());
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        let subscriber = Subscriber {
            id,
            queue,
            slow: slow.clone(),
        };
        (subscriber, Inbox { messages, slow })
    }

    /// Adds `subscriber` to `topic` (again is harmless) and, for a client that last saw
    /// `from_seq`, whether the history can replay what came after it.
    pub fn subscribe(
        &self,
        topic: Topic,
        subscriber: &Subscriber,
        from_seq: Option<u64>,
    ) -> Resume {
        let mut state = self.lock();
        let entry = state.topics.entry(topic).or_default();
        if !entry.subscribers.iter().any(|s| s.id == subscriber.id) {
            entry.subscribers.push(subscriber.clone());
        }
        let (Some(from_seq), Some(last_seq)) = (from_seq, entry.last_seq) else {
            return Resume::Snapshot;
        };
        if from_seq > last_seq {
            return Resume::Snapshot;
        }
        if from_seq == last_seq {
            return Resume::Replay(Vec::new());
        }
        match entry.history.front() {
            Some(first) if first.seq <= from_seq + 1 => Resume::Replay(
                entry
                    .history
                    .iter()
                    .filter(|message| message.seq > from_seq)
                    .cloned()
                    .collect(),
            ),
            _ => Resume::Snapshot,
        }
    }

    pub fn unsubscribe(&self, topic: Topic, subscriber_id: u64) {
        let mut state = self.lock();
        if let Some(entry) = state.topics.get_mut(&topic) {
            entry.subscribers.retain(|s| s.id != subscriber_id);
            state.forget_if_idle(topic);
        }
    }

    /// Removes a connection from every topic it was on.
    pub fn disconnect(&self, subscriber_id: u64, topics: impl IntoIterator<Item = Topic>) {
        for topic in topics {
            self.unsubscribe(topic, subscriber_id);
        }
    }

    /// Appends `messages` (in commit order) to their topics' histories and queues them for
    /// every subscriber.
    pub fn publish(&self, messages: &[Arc<Message>]) {
        let mut cut_off = Vec::new();
        let mut state = self.lock();
        let state = &mut *state;
        for message in messages {
            let topic = message.topic;
            // A private topic is held only while someone listens to it.
            let entry = match state.topics.entry(topic) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(_) if topic.is_private() => continue,
                Entry::Vacant(vacant) => vacant.insert(TopicState::default()),
            };
            let grown = entry.remember(message);
            state.history_bytes = state.history_bytes.saturating_add_signed(grown);
            state.kept.push_back((topic, message.seq));
            entry.subscribers.retain(|subscriber| {
                match subscriber.queue.try_send(message.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        subscriber.slow.set();
                        cut_off.push(subscriber.id);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            state.forget_if_idle(topic);
        }
        if !cut_off.is_empty() {
            let mut emptied = Vec::new();
            for (topic, entry) in state.topics.iter_mut() {
                entry.subscribers.retain(|s| !cut_off.contains(&s.id));
                emptied.push(*topic);
            }
            for topic in emptied {
                state.forget_if_idle(topic);
            }
        }
        state.fit();
    }

    /// Subscribers on `topic` (for metrics and tests).
    pub fn subscriber_count(&self, topic: Topic) -> usize {
        self.lock()
            .topics
            .get(&topic)
            .map_or(0, |entry| entry.subscribers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn message(topic: Topic, seq: u64) -> Arc<Message> {
        Arc::new(Message {
            topic,
            seq,
            text: format!("{seq}").into(),
        })
    }

    fn seqs(messages: &[Arc<Message>]) -> Vec<u64> {
        messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn resume_replays_exactly_what_was_missed_while_the_history_reaches() {
        let hub = Hub::default();
        let topic = Topic::Book(Uuid::from_u128(1));
        let (first, _inbox) = hub.connect(16);
        assert!(matches!(
            hub.subscribe(topic, &first, None),
            Resume::Snapshot
        ));
        let published: Vec<_> = (1..=HISTORY_PER_TOPIC as u64 + 10)
            .map(|seq| message(topic, seq))
            .collect();
        hub.publish(&published);
        let last = HISTORY_PER_TOPIC as u64 + 10;
        let (second, _inbox2) = hub.connect(16);
        match hub.subscribe(topic, &second, Some(last - 3)) {
            Resume::Replay(missed) => assert_eq!(seqs(&missed), vec![last - 2, last - 1, last]),
            Resume::Snapshot => panic!("should replay"),
        }
        assert!(
            matches!(hub.subscribe(topic, &second, Some(last)), Resume::Replay(m) if m.is_empty())
        );
        // Evicted from the history, or from the future: snapshot.
        assert!(matches!(
            hub.subscribe(topic, &second, Some(5)),
            Resume::Snapshot
        ));
        assert!(matches!(
            hub.subscribe(topic, &second, Some(last + 1)),
            Resume::Snapshot
        ));
    }

    #[test]
    fn the_history_is_bounded_in_bytes_too() {
        let hub = Hub::default();
        let topic = Topic::Book(Uuid::from_u128(5));
        let big = |seq| {
            Arc::new(Message {
                topic,
                seq,
                text: "x".repeat(100 * 1024).into(),
            })
        };
        hub.publish(&[big(1), big(2), big(3), big(4)]);
        let (subscriber, _inbox) = hub.connect(8);
        assert!(matches!(
            hub.subscribe(topic, &subscriber, Some(1)),
            Resume::Snapshot
        ));
        match hub.subscribe(topic, &subscriber, Some(2)) {
            Resume::Replay(missed) => assert_eq!(seqs(&missed), vec![3, 4]),
            Resume::Snapshot => panic!("the last 200 KiB are kept"),
        }
    }

    #[test]
    fn a_full_queue_cuts_its_subscriber_off_and_nobody_else() {
        let hub = Hub::default();
        let topic = Topic::Trades(Uuid::from_u128(2));
        let (slow, slow_inbox) = hub.connect(2);
        let (fast, mut fast_inbox) = hub.connect(64);
        hub.subscribe(topic, &slow, None);
        hub.subscribe(topic, &fast, None);
        hub.publish(&[message(topic, 1), message(topic, 2)]);
        assert!(!slow_inbox.slow.is_set());
        hub.publish(&[message(topic, 3)]);
        assert!(slow_inbox.slow.is_set());
        assert!(!fast_inbox.slow.is_set());
        assert_eq!(hub.subscriber_count(topic), 1);
        for seq in 1..=3 {
            assert_eq!(fast_inbox.messages.try_recv().map(|m| m.seq), Ok(seq));
        }
    }

    #[test]
    fn a_gap_restarts_the_history_so_no_resume_spans_it() {
        let hub = Hub::default();
        let topic = Topic::Fills(Uuid::from_u128(3));
        let (subscriber, _inbox) = hub.connect(64);
        hub.subscribe(topic, &subscriber, None);
        hub.publish(&[message(topic, 1), message(topic, 2), message(topic, 5)]);
        assert!(matches!(
            hub.subscribe(topic, &subscriber, Some(1)),
            Resume::Snapshot
        ));
        assert!(
            matches!(hub.subscribe(topic, &subscriber, Some(4)), Resume::Replay(m) if seqs(&m) == vec![5])
        );
    }

    /// 100,000 users each trade once, nobody listening to their private topics, while a few
    /// listen to theirs and to the market: the hub holds the market's topic and the listeners'
    /// topics, nothing for the others.
    #[test]
    fn users_who_trade_without_listening_cost_the_hub_nothing() {
        let hub = Hub::default();
        let market = Topic::Trades(Uuid::from_u128(0));
        let (listener, _inbox) = hub.connect(1_000_000);
        hub.subscribe(market, &listener, None);
        let listened: Vec<Topic> = (1..=10)
            .map(|n| Topic::Orders(Uuid::from_u128(n)))
            .collect();
        for topic in &listened {
            hub.subscribe(*topic, &listener, None);
        }
        for user in 1..=100_000u128 {
            let id = Uuid::from_u128(user);
            let batch: Vec<Arc<Message>> = [
                Topic::Orders(id),
                Topic::Fills(id),
                Topic::Balances(id),
                Topic::Positions(id),
            ]
            .into_iter()
            .map(|topic| message(topic, 1))
            .chain([message(market, user as u64)])
            .collect();
            hub.publish(&batch);
        }
        let (topics, bytes) = hub.size();
        assert_eq!(topics, 1 + listened.len());
        let market_bytes: usize = (100_000 - HISTORY_PER_TOPIC as u64 + 1..=100_000)
            .map(|seq| seq.to_string().len())
            .sum();
        assert_eq!(
            bytes,
            market_bytes + listened.len(),
            "only what is kept is counted"
        );
        hub.disconnect(listener.id, listened.iter().copied().chain([market]));
        assert_eq!(
            hub.size().0,
            1,
            "the market's history stays for clients that come back"
        );
    }

    #[test]
    fn all_histories_together_stay_within_the_bound_oldest_evicted_first() {
        let bound = 64 * 1024;
        let hub = Hub::new(bound);
        let kilobyte = |topic, seq| {
            Arc::new(Message {
                topic,
                seq,
                text: "x".repeat(1024).into(),
            })
        };
        let markets: Vec<Topic> = (0..100).map(|n| Topic::Book(Uuid::from_u128(n))).collect();
        for seq in 1..=20 {
            let batch: Vec<_> = markets.iter().map(|topic| kilobyte(*topic, seq)).collect();
            hub.publish(&batch);
            assert!(hub.size().1 <= bound, "{} bytes", hub.size().1);
        }
        assert_eq!(hub.size(), (100, bound));
        // What is kept is the newest: resuming from the last seq but one replays, from older
        // than the history reaches, snapshots.
        let (subscriber, _inbox) = hub.connect(8);
        let newest = markets[99];
        assert!(
            matches!(hub.subscribe(newest, &subscriber, Some(19)), Resume::Replay(m) if seqs(&m) == vec![20])
        );
        assert!(matches!(
            hub.subscribe(markets[0], &subscriber, Some(1)),
            Resume::Snapshot
        ));
    }

    #[test]
    fn private_topics_are_forgotten_when_their_last_subscriber_leaves() {
        let hub = Hub::default();
        let private = Topic::Orders(Uuid::from_u128(4));
        let public = Topic::Book(Uuid::from_u128(4));
        let (subscriber, _inbox) = hub.connect(8);
        hub.subscribe(private, &subscriber, None);
        hub.subscribe(public, &subscriber, None);
        hub.publish(&[message(private, 1), message(public, 1)]);
        hub.disconnect(subscriber.id, [private, public]);
        assert!(!hub.lock().topics.contains_key(&private));
        assert!(hub.lock().topics.contains_key(&public));
    }
}
