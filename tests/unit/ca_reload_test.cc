// Hot reload: the root files are replaced on disk (atomically, in place, broken) while leaves
// are being minted on other threads.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "ca/authority.h"
#include "ca/root_store.h"
#include "core/log.h"
#include "support/temp_dir.h"
#include "unit/ca_test_util.h"

namespace mitmd::ca {
namespace {

using ::mitmd::ca::testing::ParseBuffer;
using ::mitmd::ca::testing::ToPem;
using ::mitmd::ca::testing::VerifyLeaf;
using ::mitmd::ca::testing::VerifyWithBoringSsl;
using ::mitmd::testing::ReadFile;
using ::mitmd::testing::TempDir;
using ::mitmd::testing::WriteFile;

constexpr auto kReloadWait = std::chrono::seconds(10);

// Collects ReloadEvents from the watcher's thread.
class Events {
 public:
  void Add(const ReloadEvent& e) {
    std::lock_guard lock(mu_);
    events_.push_back(e);
    cv_.notify_all();
  }
  // Waits for the |n|th event (1-based) and returns it.
  std::optional<ReloadEvent> WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kReloadWait, [&] { return events_.size() >= n; })) return std::nullopt;
    return events_[n - 1];
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return events_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReloadEvent> events_;
};

// A root made elsewhere, as PEM text.
RootFiles OtherRoot() {
  auto files = NewRootFiles(KeyType::kEcdsaP256, Scope());
  EXPECT_TRUE(files) << files.error().message;
  return *files;
}

// Writes |content| to |path| the way editors and deploy tools do: a temporary file (mode
// |mode|) renamed over the target.
void ReplaceAtomically(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".new";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  fchmod(fd, mode);
  close(fd);
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
}

std::string Fingerprint(const std::string& cert_pem) {
  auto cert = ParseCertPem(cert_pem);
  auto der = CertToDer(cert->get());
  return ::mitmd::ca::Fingerprint(*der, EVP_sha256());
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_path_ = dir_.File("log.jsonl");
    log_fd_ = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ASSERT_GE(log_fd_, 0);
    logger_ = std::make_unique<Logger>(log_fd_, LogLevel::kInfo);
    AuthorityOptions options;
    options.confdir = dir_.File("conf");
    options.watch = true;
    options.watch_settle = std::chrono::milliseconds(100);
    options.logger = logger_.get();
    options.on_reload = [this](const ReloadEvent& e) { events_.Add(e); };
    auto ca = Authority::Open(options);
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
  }

  void TearDown() override {
    ca_.reset();
    if (log_fd_ >= 0) close(log_fd_);
  }

  std::string CertPath() const { return ca_->root_cert_path(); }
  std::string KeyPath() const { return ca_->root_key_path(); }

  TempDir dir_;
  std::string log_path_;
  int log_fd_ = -1;
  std::unique_ptr<Logger> logger_;
  Events events_;
  std::unique_ptr<Authority> ca_;
};

TEST_F(ReloadTest, ReplacedFilesAreLoadedWhileLeavesAreMinted) {
  std::atomic<bool> stop{false};
  std::atomic<int> minted{0}, failures{0};
  std::mutex seen_mu;
  std::set<std::string> roots_seen;
  std::vector<std::thread> minters;
  for (int t = 0; t < 2; ++t) {
    minters.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        std::string host = "h" + std::to_string((i * 2 + t) % 7) + ".test";
        auto leaf = ca_->LeafFor({.host = host});
        // Each leaf must verify against the root that came with it in its chain.
        if (!leaf || VerifyWithBoringSsl(ParseBuffer((*leaf)->chain[1].get()).get(),
                                         ParseBuffer((*leaf)->chain[0].get()).get(),
                                         {.host = host}) != X509_V_OK) {
          ++failures;
        } else {
          std::lock_guard lock(seen_mu);
          roots_seen.insert(ToPem((*leaf)->chain[1].get()));
        }
        ++minted;
      }
    });
  }

  const std::string first = ca_->root_fingerprint_sha256();
  EXPECT_EQ(ca_->root_generation(), 1u);

  // 1. Atomic replacement (rename over both files).
  RootFiles second = OtherRoot();
  ReplaceAtomically(KeyPath(), second.key_pem, 0600);
  ReplaceAtomically(CertPath(), second.cert_pem, 0644);
  auto e1 = events_.WaitFor(1);
  ASSERT_TRUE(e1);
  EXPECT_TRUE(e1->changed) << e1->message;
  EXPECT_EQ(e1->fingerprint_sha256, Fingerprint(second.cert_pem));
  EXPECT_EQ(ca_->root_fingerprint_sha256(), Fingerprint(second.cert_pem));
  EXPECT_EQ(ca_->root_generation(), 2u);
  auto after = ca_->LeafFor({.host = "fresh.test"});
  ASSERT_TRUE(after);
  EXPECT_EQ(VerifyLeaf(*ca_, **after, {.host = "fresh.test"}), X509_V_OK);

  // 2. In-place rewrite of both files (truncate and write; the key keeps its mode).
  RootFiles third = OtherRoot();
  WriteFile(KeyPath(), third.key_pem);
  WriteFile(CertPath(), third.cert_pem);
  for (size_t n = 2;; ++n) {
    auto e = events_.WaitFor(n);
    ASSERT_TRUE(e) << "no reload after the in-place write";
    if (e->changed) break;
  }
  EXPECT_EQ(ca_->root_fingerprint_sha256(), Fingerprint(third.cert_pem));
  // Let the loop run on the third root for a while.
  int target = minted.load() + 50;
  auto give_up = std::chrono::steady_clock::now() + kReloadWait;
  while (minted.load() < target && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  stop = true;
  for (auto& th : minters) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(minted.load(), 0);
  EXPECT_NE(first, ca_->root_fingerprint_sha256());
  // Leaves from the new roots were handed out while the loop ran.
  EXPECT_GE(roots_seen.size(), 2u);
  EXPECT_TRUE(roots_seen.count(third.cert_pem));
}

TEST_F(ReloadTest, CorruptReplacementIsRejectedAndLogged) {
  const std::string before = ca_->root_fingerprint_sha256();
  auto leaf = ca_->LeafFor({.host = "kept.test"});
  ASSERT_TRUE(leaf);
  ReplaceAtomically(CertPath(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                    0644);
  auto e = events_.WaitFor(1);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->rejected);
  EXPECT_FALSE(e->changed);
  EXPECT_TRUE(e->message.starts_with(CertPath() + ": ")) << e->message;
  EXPECT_EQ(ca_->root_fingerprint_sha256(), before);
  EXPECT_EQ(ca_->root_generation(), 1u);

  // Still serving, from the cache and freshly minted.
  auto cached = ca_->LeafFor({.host = "kept.test"});
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->get(), leaf->get());
  auto fresh = ca_->LeafFor({.host = "new.test"});
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(VerifyLeaf(*ca_, **fresh, {.host = "new.test"}), X509_V_OK);

  std::string log = ReadFile(log_path_);
  EXPECT_NE(log.find("cannot be used; keeping the current root"), std::string::npos) << log;
  EXPECT_NE(log.find(CertPath()), std::string::npos) << log;
  EXPECT_EQ(log.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(ReloadTest, KeyMadeReadableByOthersIsRejected) {
  const std::string before = ca_->root_fingerprint_sha256();
  ASSERT_EQ(chmod(KeyPath().c_str(), 0644), 0);
  auto e = events_.WaitFor(1);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->rejected);
  EXPECT_NE(e->message.find("chmod 600 " + KeyPath()), std::string::npos) << e->message;
  EXPECT_EQ(ca_->root_fingerprint_sha256(), before);
}

TEST_F(ReloadTest, MismatchedPairIsRejectedUntilTheKeyFollows) {
  RootFiles next = OtherRoot();
  ReplaceAtomically(CertPath(), next.cert_pem, 0644);
  auto e1 = events_.WaitFor(1);
  ASSERT_TRUE(e1);
  EXPECT_TRUE(e1->rejected);
  EXPECT_NE(e1->message.find("is not the private key of"), std::string::npos) << e1->message;
  ReplaceAtomically(KeyPath(), next.key_pem, 0600);
  auto e2 = events_.WaitFor(2);
  ASSERT_TRUE(e2);
  EXPECT_TRUE(e2->changed) << e2->message;
  EXPECT_EQ(ca_->root_fingerprint_sha256(), Fingerprint(next.cert_pem));
}

TEST_F(ReloadTest, ReloadDropsCachedLeavesButNotLeavesInUse) {
  auto old_leaf = ca_->LeafFor({.host = "a.test"});
  ASSERT_TRUE(old_leaf);
  ASSERT_TRUE(ca_->LeafFor({.host = "b.test"}));
  EXPECT_EQ(ca_->cache_stats().size, 2u);
  X509* old_root = ca_->root();

  RootFiles next = OtherRoot();
  ReplaceAtomically(KeyPath(), next.key_pem, 0600);
  ReplaceAtomically(CertPath(), next.cert_pem, 0644);
  auto e = events_.WaitFor(1);
  ASSERT_TRUE(e && e->changed);
  EXPECT_EQ(ca_->cache_stats().size, 0u);

  // The leaf a connection still holds keeps its chain and key, and still verifies against the
  // old root, which root() handed out earlier and which stays valid.
  EXPECT_EQ((*old_leaf)->chain.size(), 2u);
  EXPECT_EQ(VerifyWithBoringSsl(old_root, ParseBuffer((*old_leaf)->chain[0].get()).get(),
                                {.host = "a.test"}),
            X509_V_OK);
  auto new_leaf = ca_->LeafFor({.host = "a.test"});
  ASSERT_TRUE(new_leaf);
  EXPECT_NE(new_leaf->get(), old_leaf->get());
  EXPECT_EQ(VerifyLeaf(*ca_, **new_leaf, {.host = "a.test"}), X509_V_OK);
  EXPECT_NE(VerifyWithBoringSsl(old_root, ParseBuffer((*new_leaf)->chain[0].get()).get(),
                                {.host = "a.test"}),
            X509_V_OK);

  std::string log = ReadFile(log_path_);
  EXPECT_NE(log.find("CA root reloaded"), std::string::npos) << log;
  EXPECT_NE(log.find(Fingerprint(next.cert_pem)), std::string::npos) << log;
}

TEST_F(ReloadTest, UnrelatedFilesInTheDirectoryDoNotTriggerReloads) {
  WriteFile(dir_.File("conf/flows.jsonl"), "{}\n");
  WriteFile(dir_.File("conf/mitmd-ca.pem.bak"), "x");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(events_.size(), 0u);
}

TEST(ReloadManualTest, ReloadWithoutAWatcher) {
  TempDir dir;
  auto ca = Authority::LoadOrCreate(dir.File("conf"));
  ASSERT_TRUE(ca);
  auto same = (*ca)->Reload();
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_FALSE(same->changed);
  EXPECT_EQ((*ca)->root_generation(), 1u);

  RootFiles next = OtherRoot();
  WriteFile((*ca)->root_key_path(), next.key_pem);
  WriteFile((*ca)->root_cert_path(), next.cert_pem);
  auto changed = (*ca)->Reload();
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_TRUE(changed->changed);
  EXPECT_EQ((*ca)->root_fingerprint_sha256(), Fingerprint(next.cert_pem));

  WriteFile((*ca)->root_cert_path(), "junk");
  auto broken = (*ca)->Reload();
  ASSERT_FALSE(broken);
  EXPECT_EQ((*ca)->root_fingerprint_sha256(), Fingerprint(next.cert_pem));
}

}  // namespace
}  // namespace mitmd::ca
