use governance::testing::ScriptedLedger;
use governance::*;
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = GovStore::open(dir.path()).unwrap();
    let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
    let mut config = TreasuryExecutorConfig::new("b", breaker);
    config.batch_size = 500;
    let mut ex =
        TreasuryExecutor::new(config, store.clone(), Arc::new(ScriptedLedger::default())).unwrap();
    let t = Instant::now();
    for i in 0..2000u64 {
        store
            .queue(
                &NewDisbursement {
                    destination: format!("d{i}"),
                    amount: 1,
                    memo: String::new(),
                    activation_epoch: 0,
                    depends_on: vec![],
                    external_key: None,
                },
                0,
            )
            .unwrap();
    }
    println!("queue 2000: {:?}", t.elapsed());
    let t = Instant::now();
    store.flush().unwrap();
    println!("flush: {:?}", t.elapsed());
    for _ in 0..6 {
        let t = Instant::now();
        let r = ex.tick().unwrap();
        println!("tick: {:?} {:?}", t.elapsed(), (r.submitted, r.executed));
    }
    let t = Instant::now();
    store.flush().unwrap();
    println!("flush: {:?}", t.elapsed());
}
