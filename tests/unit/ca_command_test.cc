#include "cli/ca_command.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "ca/authority.h"
#include "ca/export.h"
#include "ca/x509_util.h"
#include "support/temp_dir.h"
#include "unit/ca_test_util.h"

namespace mitmd::cli {
namespace {

using ::mitmd::testing::ReadFile;
using ::mitmd::testing::TempDir;

struct CaRun {
  int code;
  std::string out;
  std::string err;
};

class CaCommandTest : public ::testing::Test {
 protected:
  CaRun Ca(std::vector<std::string> words) {
    std::vector<std::string_view> args(words.begin(), words.end());
    std::ostringstream out, err;
    int code = RunCaCommand(args, home_.path(), out, err);
    return CaRun{code, out.str(), err.str()};
  }

  std::string Conf() const { return home_.path() + "/.mitmd"; }

  // Files in the confdir whose names start with |prefix| and end with ".bak".
  std::vector<std::string> Backups(const std::string& prefix) {
    std::vector<std::string> out;
    DIR* d = opendir(Conf().c_str());
    while (dirent* e = d ? readdir(d) : nullptr) {
      std::string name = e->d_name;
      if (name.starts_with(prefix) && name.ends_with(".bak")) out.push_back(Conf() + "/" + name);
    }
    if (d) closedir(d);
    return out;
  }

  TempDir home_;
};

TEST_F(CaCommandTest, InfoCreatesTheRootOnFirstUseAndDescribesIt) {
  CaRun r = Ca({"info"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto ca = ca::Authority::LoadOrCreate(Conf());
  ASSERT_TRUE(ca);
  EXPECT_NE(r.out.find("certificate  " + Conf() + "/mitmd-ca.pem\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("private key  " + Conf() + "/mitmd-ca-key.pem\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("SHA-256      " + (*ca)->root_fingerprint_sha256() + "\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("SHA-1        "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("key type     ECDSA P-256\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("subject      CN=mitmd root CA "), std::string::npos) << r.out;
  // Ten years from now, less the seconds the test has taken.
  EXPECT_TRUE(r.out.find("(in 3649 days)") != std::string::npos ||
              r.out.find("(in 3650 days)") != std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("scope        unconstrained\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("android name " + ca::AndroidFileName((*ca)->root())), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(CaCommandTest, ExportWritesEachFormat) {
  CaRun pem = Ca({"export"});
  ASSERT_EQ(pem.code, 0) << pem.err;
  EXPECT_EQ(pem.out, ReadFile(Conf() + "/mitmd-ca.pem"));

  std::string der_path = home_.File("root.cer");
  CaRun der = Ca({"export", "--format", "der", "--out", der_path});
  ASSERT_EQ(der.code, 0) << der.err;
  EXPECT_EQ(der.out, "wrote " + der_path + "\n");
  auto cert = ca::ParseCertPem(pem.out);
  ASSERT_TRUE(cert);
  EXPECT_EQ(ReadFile(der_path), ca::CertToDer(cert->get()).value());

  CaRun p12 = Ca({"export", "--format=p12", "--out=" + home_.File("root.p12")});
  ASSERT_EQ(p12.code, 0) << p12.err;
  EXPECT_GT(ReadFile(home_.File("root.p12")).size(), 100u);
}

TEST_F(CaCommandTest, ExportUsesTheConventionalNameInTheCurrentDirectory) {
  ASSERT_EQ(Ca({"info"}).code, 0);
  auto cert = ca::ParseCertPem(ReadFile(Conf() + "/mitmd-ca.pem"));
  ASSERT_TRUE(cert);
  std::string android = ca::AndroidFileName(cert->get());

  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(chdir(home_.path().c_str()), 0);
  CaRun r = Ca({"export", "--format", "android"});
  CaRun d = Ca({"export", "--format", "der"});
  ASSERT_EQ(chdir(cwd), 0);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "wrote " + android + "\n");
  EXPECT_EQ(ReadFile(home_.File(android)), ReadFile(Conf() + "/mitmd-ca.pem"));
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, "wrote mitmd-ca.cer\n");
}

TEST_F(CaCommandTest, RegenerateKeepsDatedBackups) {
  ASSERT_EQ(Ca({"info"}).code, 0);
  std::string old_cert = ReadFile(Conf() + "/mitmd-ca.pem");
  std::string old_key = ReadFile(Conf() + "/mitmd-ca-key.pem");

  CaRun r = Ca({"regenerate"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(ReadFile(Conf() + "/mitmd-ca.pem"), old_cert);
  auto cert_backups = Backups("mitmd-ca.pem.");
  auto key_backups = Backups("mitmd-ca-key.pem.");
  ASSERT_EQ(cert_backups.size(), 1u);
  ASSERT_EQ(key_backups.size(), 1u);
  EXPECT_EQ(ReadFile(cert_backups[0]), old_cert);
  EXPECT_EQ(ReadFile(key_backups[0]), old_key);
  struct stat st;
  ASSERT_EQ(stat(key_backups[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((Conf() + "/mitmd-ca-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(r.out.find("old root     " + cert_backups[0]), std::string::npos) << r.out;

  // Twice in the same second still keeps both generations.
  ASSERT_EQ(Ca({"regenerate"}).code, 0);
  EXPECT_EQ(Backups("mitmd-ca.pem.").size(), 2u);
  EXPECT_EQ(Backups("mitmd-ca-key.pem.").size(), 2u);
  auto ca = ca::Authority::LoadOrCreate(Conf());
  ASSERT_TRUE(ca) << ca.error().message;
}

TEST_F(CaCommandTest, RegenerateWithScopeAndKeyType) {
  CaRun r = Ca({"regenerate", "--scope", "example.com,.test", "--ca-key-type", "rsa3072"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("scope        permitted: example.com, .test; excluded: 0.0.0.0/0, ::/0"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(Backups("mitmd-ca").empty());  // nothing to back up on a fresh confdir
  CaRun info = Ca({"info"});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("key type     RSA 3072\n"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("scope        permitted: example.com, .test;"), std::string::npos)
      << info.out;
  auto ca = ca::Authority::LoadOrCreate(Conf());
  ASSERT_TRUE(ca);
  EXPECT_TRUE((*ca)->InScope("www.example.com"));
  EXPECT_FALSE((*ca)->InScope("www.example.org"));
}

TEST_F(CaCommandTest, UserSuppliedRootForInfo) {
  ASSERT_EQ(Ca({"info", "--confdir", home_.File("elsewhere")}).code, 0);
  CaRun r = Ca({"info", "--ca-cert", home_.File("elsewhere/mitmd-ca.pem"), "--ca-key",
                home_.File("elsewhere/mitmd-ca-key.pem")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("certificate  " + home_.File("elsewhere/mitmd-ca.pem")), std::string::npos)
      << r.out;
  EXPECT_EQ(access((Conf() + "/mitmd-ca.pem").c_str(), F_OK), -1);
}

TEST_F(CaCommandTest, ReadableKeyFailsWithTheChmod) {
  ASSERT_EQ(Ca({"info"}).code, 0);
  std::string key = Conf() + "/mitmd-ca-key.pem";
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  CaRun r = Ca({"info"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("run `chmod 600 " + key + "`"), std::string::npos) << r.err;
}

TEST_F(CaCommandTest, UsageErrors) {
  for (const auto& words : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"info", "--scope", "example.com"},
           {"info", "--format", "der"},
           {"export", "--nope"},
           {"export", "--out"},
           {"regenerate", "--ca-cert", "x.pem", "--ca-key", "y.pem"},
           {"info", "extra"}}) {
    CaRun r = Ca(words);
    EXPECT_EQ(r.code, 2) << (words.empty() ? "(none)" : words[0]) << ": " << r.err;
    EXPECT_NE(r.err.find("see mitmd ca --help"), std::string::npos) << r.err;
  }
  CaRun bad_format = Ca({"export", "--format", "jks"});
  EXPECT_EQ(bad_format.code, 2);
  EXPECT_NE(bad_format.err.find("use pem, der, p12 or android"), std::string::npos)
      << bad_format.err;
  CaRun bad_scope = Ca({"regenerate", "--scope", "not a domain"});
  EXPECT_EQ(bad_scope.code, 2);
  EXPECT_NE(bad_scope.err.find("--scope: "), std::string::npos) << bad_scope.err;
  CaRun bad_type = Ca({"regenerate", "--ca-key-type", "dsa"});
  EXPECT_EQ(bad_type.code, 2);
  EXPECT_EQ(access((Conf() + "/mitmd-ca.pem").c_str(), F_OK), -1);  // nothing was made
}

TEST_F(CaCommandTest, HelpListsTheCommands) {
  CaRun r = Ca({"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* word :
       {"info", "export", "regenerate", "--scope", "--format pem|der|p12|android"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace mitmd::cli
